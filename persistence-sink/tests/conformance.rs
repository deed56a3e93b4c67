//! The chat store contract (`chat_store::conformance`, the checks the SQLite store passes) on
//! `PostgresStore` against the real PostgreSQL of `scripts/services.sh`.

mod common;

async fn fresh() -> Option<common::SchemaStore> {
    common::schema_store("postgres conformance").await
}

chat_store::conformance_tests!(fresh);
