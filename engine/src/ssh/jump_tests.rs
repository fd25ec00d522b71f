//! Jump hosts against in-process russh servers on loopback: a jump server that serves
//! `direct-tcpip` by connecting where asked, and a target server behind it.
//!
//! ```text
//!  SshHost t0 ─┐
//!  SshHost t1 ─┼─▶ jump (127.0.0.1:J, one connection) ──direct-tcpip──▶ target (127.0.0.1:T) ×3
//!  SshHost t2 ─┘
//! ```

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use russh::Channel;
use russh::keys::PrivateKey;
use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::server::{self, Auth, ChannelOpenHandle, Msg, Session, VerifiedPublicKey};

use super::{Jump, JumpPool, SshConfig, SshHost};

fn key(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

#[derive(Clone)]
struct Server {
    /// Whether `direct-tcpip` is served (the jump host) or refused (the target).
    forwards: bool,
}

impl server::Handler for Server {
    type Error = russh::Error;

    async fn auth_publickey(&mut self, _: &str, _: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        Ok(Auth::Accept)
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _: &str,
        _: u32,
        reply: ChannelOpenHandle,
        _: &mut Session,
    ) -> Result<(), Self::Error> {
        let Ok(port) = u16::try_from(port) else { return Ok(()) };
        match tokio::net::TcpStream::connect((host, port)).await {
            Ok(mut tcp) if self.forwards => {
                reply.accept().await;
                tokio::spawn(async move {
                    let mut stream = channel.into_stream();
                    let _ = tokio::io::copy_bidirectional(&mut stream, &mut tcp).await;
                });
            }
            _ => reply.reject(russh::ChannelOpenFailure::ConnectFailed).await,
        }
        Ok(())
    }
}

/// Serves SSH on a loopback port with host key `host_key`, counting accepted connections.
async fn serve(host_key: PrivateKey, forwards: bool) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let config = Arc::new(server::Config {
        keys: vec![host_key],
        inactivity_timeout: None,
        auth_rejection_time: std::time::Duration::from_millis(10),
        ..server::Config::default()
    });
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        for _ in 0..32 {
            let Ok((socket, _)) = listener.accept().await else { return };
            count.fetch_add(1, Ordering::SeqCst);
            let config = Arc::clone(&config);
            tokio::spawn(async move {
                if let Ok(session) = server::run_stream(config, socket, Server { forwards }).await {
                    let _ = session.await;
                }
            });
        }
    });
    (port, accepted)
}

fn known_line(port: u16, key: &PrivateKey) -> String {
    format!("[127.0.0.1]:{port} {}\n", key.public_key().to_openssh().unwrap())
}

fn config(port: u16, dir: &Path, known_hosts: &Path) -> SshConfig {
    let mut config = SshConfig::new("127.0.0.1", "root");
    config.port = port;
    config.key_file = Some(dir.join("id"));
    config.known_hosts = known_hosts.to_owned();
    config.connect_timeout = std::time::Duration::from_secs(5);
    config
}

fn client_key(dir: &Path) {
    let text = key(9).to_openssh(LineEnding::LF).unwrap();
    std::fs::write(dir.join("id"), text.as_bytes()).unwrap();
}

#[tokio::test]
async fn hosts_behind_one_jump_host_share_one_connection_to_it() {
    let dir = tempfile::tempdir().unwrap();
    client_key(dir.path());
    let (jump_port, jump_accepts) = serve(key(1), true).await;
    let (target_port, target_accepts) = serve(key(2), false).await;
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, format!("{}{}", known_line(jump_port, &key(1)), known_line(target_port, &key(2))))
        .unwrap();
    let pool = Arc::new(JumpPool::default());
    let hop = Jump { name: "bastion".into(), config: config(jump_port, dir.path(), &known), origin: None };
    let hosts: Vec<SshHost> = (0..3)
        .map(|i| {
            let mut target = config(target_port, dir.path(), &known);
            target.jumps = vec![hop.clone()];
            SshHost::with_jumps(format!("t{i}"), target, Arc::clone(&pool))
        })
        .collect();
    // All three at once: they wait for one connect to the jump host, then share it.
    let (a, b, c) = tokio::join!(hosts[0].connect(), hosts[1].connect(), hosts[2].connect());
    for result in [a, b, c] {
        result.unwrap();
    }
    assert_eq!(jump_accepts.load(Ordering::SeqCst), 1, "one connection to the jump host");
    assert_eq!(target_accepts.load(Ordering::SeqCst), 3, "each target its own, through it");
}

#[tokio::test]
async fn an_unknown_jump_host_or_a_refused_tunnel_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    client_key(dir.path());
    let (jump_port, _) = serve(key(1), true).await;
    let (target_port, target_accepts) = serve(key(2), false).await;
    // The jump host's key is not listed.
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, known_line(target_port, &key(2))).unwrap();
    let mut target = config(target_port, dir.path(), &known);
    target.jumps =
        vec![Jump { name: "bastion".into(), config: config(jump_port, dir.path(), &known), origin: None }];
    let error = SshHost::new("t".into(), target.clone()).connect().await.unwrap_err().to_string();
    let want = format!(
        "t (root@127.0.0.1:{target_port}): via bastion (root@127.0.0.1:{jump_port}): host key for 127.0.0.1:{jump_port}"
    );
    assert!(error.contains(&want), "{error}");
    assert_eq!(target_accepts.load(Ordering::SeqCst), 0, "the target was never reached");

    // Known, but nothing listens where the target should be.
    std::fs::write(&known, known_line(jump_port, &key(1))).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    target.port = closed;
    let error = SshHost::new("t".into(), target).connect().await.unwrap_err().to_string();
    let want = format!(
        "via bastion (root@127.0.0.1:{jump_port}): the jump host could not connect to 127.0.0.1:{closed}"
    );
    assert!(error.contains(&want), "{error}");
}
