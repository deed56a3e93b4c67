//! Local stand-ins for FCM HTTP v1, APNs and a Web Push service, for the push tests. Each
//! checks what the real service checks (the OAuth grant's RS256 signature and the bearer on
//! each send; the APNs provider token's ES256 signature, key id and team id over HTTP/2; the
//! VAPID signature, and the payload decrypted with the subscription's private key), records
//! what it accepted, and fails on request. It makes all its keys at start and describes
//! them in an [`Info`] (the binary writes it as JSON), so a test starts it, reads the
//! description and starts the broker with [`Info::broker_flags`].
//!
//! Not a dependency of the broker or of `stompbox-push`: only tests use it.

mod apns;
mod control;
mod fcm;
mod info;
mod keys;
mod record;
mod tls;
mod webpush;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use jsonwebtoken::DecodingKey;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use info::{ApnsInfo, FcmInfo, Info, WebPushInfo};
pub use record::{Attempt, Failure, Received, Script, Stats};

/// How to start a testbed.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the key files go (must exist).
    pub dir: PathBuf,
    /// Lifetime of the FCM access tokens it grants.
    pub access_token_ttl: Duration,
    /// Web Push subscriptions made at start.
    pub webpush_subscriptions: usize,
    /// The app's bundle id APNs expects in `apns-topic`.
    pub apns_topic: String,
    /// Port of the HTTPS listener (0: any free one).
    pub https_port: u16,
    /// Port of the plain-HTTP listener (0: any free one).
    pub http_port: u16,
}

impl Options {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Options {
            dir: dir.into(),
            access_token_ttl: Duration::from_secs(3600),
            webpush_subscriptions: 4,
            apns_topic: "chat.stompbox.testbed".into(),
            https_port: 0,
            http_port: 0,
        }
    }
}

/// What every route shares.
pub(crate) struct Shared {
    pub recorder: record::Recorder,
    pub fcm: fcm::Fcm,
    pub apns: apns::Apns,
    pub webpush: webpush::WebPush,
}

impl Shared {
    pub(crate) fn apply(&self, script: Script) {
        if script.revoke_access_tokens {
            self.fcm.revoke_all();
        }
        self.recorder.script(script);
    }
}

/// A running testbed; dropping it stops the listeners.
pub struct Testbed {
    info: Info,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Testbed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Testbed")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

impl Testbed {
    /// Makes the keys, writes their files into `options.dir`, and starts listening.
    pub async fn start(options: Options) -> anyhow::Result<Testbed> {
        let dir = &options.dir;
        let https = TcpListener::bind(SocketAddr::new(LOOPBACK, options.https_port)).await?;
        let plain = TcpListener::bind(SocketAddr::new(LOOPBACK, options.http_port)).await?;
        let origin = format!("https://{}", https.local_addr()?);
        let control = format!("http://{}", plain.local_addr()?);

        let tls = keys::tls()?;
        let ca_file = keys::write(dir, "ca.pem", &tls.ca_pem)?;

        let rsa = keys::rsa()?;
        let project_id = "stompbox-testbed".to_owned();
        let client_email = format!("push@{project_id}.iam.gserviceaccount.com");
        let token_uri = format!("{origin}/token");
        let account = json!({
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": keys::random_hex(20),
            "private_key": rsa.private_pem,
            "client_email": client_email,
            "client_id": "100000000000000000001",
            "auth_uri": format!("{origin}/auth"),
            "token_uri": token_uri,
        });
        let credentials = keys::write(dir, "service-account.json", &account.to_string())?;

        let apns_key = keys::p256()?;
        let key_id = keys::random_hex(5).to_uppercase();
        let team_id = keys::random_hex(5).to_uppercase();
        let p8 = keys::write(dir, &format!("AuthKey_{key_id}.p8"), &apns_key.private_pem)?;

        let vapid = keys::p256()?;
        let vapid_key = keys::write(dir, "vapid.pem", &vapid.private_pem)?;
        let vapid_subject = "mailto:push-testbed@stompbox.test".to_owned();

        let shared = Arc::new(Shared {
            recorder: record::Recorder::default(),
            fcm: fcm::Fcm {
                project_id: project_id.clone(),
                client_email: client_email.clone(),
                token_uri,
                public_key: DecodingKey::from_rsa_pem(rsa.public_pem.as_bytes())?,
                token_ttl: options.access_token_ttl,
                access_tokens: Mutex::new(HashMap::new()),
            },
            apns: apns::Apns {
                key_id: key_id.clone(),
                team_id: team_id.clone(),
                topic: options.apns_topic.clone(),
                public_key: DecodingKey::from_ec_pem(apns_key.public_pem.as_bytes())?,
            },
            webpush: webpush::WebPush {
                origin: origin.clone(),
                vapid_public: keys::public_point(&vapid.secret),
                subscriptions: Mutex::new(HashMap::new()),
            },
        });
        let subscriptions = (0..options.webpush_subscriptions)
            .map(|_| shared.webpush.subscribe())
            .collect();

        let router = fcm::routes()
            .merge(apns::routes())
            .merge(webpush::routes())
            .merge(control::routes())
            .with_state(shared.clone());
        let acceptor = tls::acceptor(&tls)?;
        let tasks = vec![
            tokio::spawn(tls::serve(https, acceptor, router.clone())),
            tokio::spawn(async move {
                let _ = axum::serve(plain, router).await;
            }),
        ];

        let mut broker_flags: Vec<String> = vec![
            "--push-ca-file".into(),
            path_arg(&ca_file),
            "--push-fcm-credentials".into(),
            path_arg(&credentials),
            "--push-fcm-endpoint".into(),
            origin.clone(),
            "--push-apns-key".into(),
            path_arg(&p8),
            "--push-apns-key-id".into(),
            key_id.clone(),
            "--push-apns-team-id".into(),
            team_id.clone(),
            "--push-apns-topic".into(),
            options.apns_topic.clone(),
            "--push-apns-endpoint".into(),
            origin.clone(),
            "--push-vapid-key".into(),
            path_arg(&vapid_key),
            "--push-vapid-subject".into(),
            vapid_subject.clone(),
        ];
        broker_flags.extend(["--push-webpush-allow".into(), LOOPBACK.to_string()]);
        let info = Info {
            control,
            ca_file,
            fcm: FcmInfo {
                credentials,
                endpoint: origin.clone(),
                project_id,
                client_email,
            },
            apns: ApnsInfo {
                key: p8,
                key_id,
                team_id,
                topic: options.apns_topic.clone(),
                endpoint: origin,
                tokens: (0..4).map(|_| keys::random_hex(32)).collect(),
            },
            webpush: WebPushInfo {
                vapid_key,
                vapid_subject,
                vapid_public_key: keys::public_point(&vapid.secret),
                allowed_host: LOOPBACK.to_string(),
                subscriptions,
            },
            broker_flags,
        };
        Ok(Testbed {
            info,
            shared,
            tasks,
        })
    }

    pub fn info(&self) -> &Info {
        &self.info
    }

    /// What was accepted, optionally of one platform ("fcm", "apns", "webpush").
    pub fn received(&self, platform: Option<&str>) -> Vec<Received> {
        self.shared.recorder.received(platform)
    }

    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.recorder.attempts()
    }

    pub fn stats(&self) -> Stats {
        self.shared.recorder.stats()
    }

    pub fn script(&self, script: Script) {
        self.shared.apply(script);
    }

    /// A new Web Push subscription JSON.
    pub fn subscribe(&self) -> serde_json::Value {
        self.shared.webpush.subscribe()
    }

    /// Writes [`Testbed::info`] as JSON to `path` (atomically: a reader never sees half).
    pub fn write_info(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let partial = path.with_extension("partial");
        std::fs::write(&partial, serde_json::to_vec_pretty(&self.info)?)
            .with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

fn path_arg(path: &std::path::Path) -> String {
    path.display().to_string()
}
