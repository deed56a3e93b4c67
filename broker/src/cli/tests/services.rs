//! The settings of the links to the services: `--kafka-option` (repeated, never comma-split,
//! refused when not `KEY=VALUE`) and `--redis-ca` (a path, relative to the file in a file).

use super::*;

fn kafka_options(c: &Config) -> Vec<(String, String)> {
    c.storage
        .kafka
        .as_ref()
        .expect("kafka configured")
        .kafka
        .options
        .clone()
}

#[test]
fn kafka_options_repeat_and_keep_their_commas_and_equals_signs() {
    let c = config(&[
        "--postgres-url",
        "postgres://db/x",
        "--kafka-brokers",
        "k:9092",
        "--kafka-option",
        "sasl.jaas.config=a=b,c=d",
        "--kafka-option",
        "security.protocol=SASL_SSL",
    ]);
    assert_eq!(
        kafka_options(&c),
        [
            ("sasl.jaas.config".to_owned(), "a=b,c=d".to_owned()),
            ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
        ]
    );
    assert!(run(&["--kafka-option", "no-equals-sign"]).is_err());
    assert!(run(&["--kafka-option", "=value"]).is_err());
}

#[test]
fn services_tls_settings_from_the_file() {
    let dir = TempDir::new("services-tls");
    let path = dir.file(
        "stompbox.toml",
        "postgres_url = \"postgres://db/x\"\nkafka_brokers = \"k:9092\"\n\
         kafka_options = [\"security.protocol=SSL\", \"ssl.ca.location=/ca.pem\"]\n\
         redis_url = \"rediss://r:6380/\"\nredis_ca = \"certs/redis-ca.pem\"\n",
    );
    let c = config(&["--config", path.to_str().expect("utf-8 temp path")]);
    assert_eq!(
        kafka_options(&c),
        [
            ("security.protocol".to_owned(), "SSL".to_owned()),
            ("ssl.ca.location".to_owned(), "/ca.pem".to_owned()),
        ]
    );
    let cluster = c.cluster.expect("cluster mode");
    assert_eq!(cluster.redis_ca, Some(dir.0.join("certs/redis-ca.pem")));
}
