//! Jump hosts shared by the hosts behind them: one connection per hop chain, however many
//! targets go through it.
//!
//! ```text
//!  controller ──TCP──▶ bastion ──direct-tcpip──▶ hop2 ──direct-tcpip──▶ target
//!              (pooled: [bastion])   (pooled: [bastion, hop2])    (the target's own connection)
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use russh::client::Handle;
use tokio::sync::Mutex;

use super::Jump;
use super::client_handler::ClientHandler;
use super::connection::{connect_direct, handshake, tunnel};

/// The connections to jump hosts of one run, keyed by the chain that reaches them
/// (`user@address:port` of every hop up to and including that one). Shared by every
/// [`super::SshHost`] of the run; passed in, never global.
#[derive(Default)]
pub struct JumpPool {
    /// The slot of each chain. The outer lock is held only to find or add a slot; a slot's own
    /// lock is held across that hop's whole connect, so the targets behind it wait for one
    /// connect instead of each opening their own.
    slots: std::sync::Mutex<HashMap<Vec<String>, Arc<Mutex<Slot>>>>,
}

impl std::fmt::Debug for JumpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chains = self.slots.lock().map_or(0, |s| s.len());
        f.debug_struct("JumpPool").field("chains", &chains).finish()
    }
}

enum Slot {
    Idle,
    Up(Arc<Handle<ClientHandler>>),
    /// A connect to this hop failed: later targets get the same reason at once (a dead bastion
    /// costs one connect timeout, not one per host behind it).
    Failed(String),
}

impl JumpPool {
    /// The connection to the last of `hops`, reached through the ones before it, connecting
    /// each hop that has no live connection yet. `Err`: the reason, naming the hop.
    pub(crate) async fn reach(
        &self,
        hops: &[Jump],
        deadline: tokio::time::Instant,
    ) -> Result<Arc<Handle<ClientHandler>>, String> {
        let mut via: Option<Arc<Handle<ClientHandler>>> = None;
        let mut key = Vec::new();
        for (index, hop) in hops.iter().enumerate() {
            key.push(format!("{}@{}", hop.config.user, hop.config.endpoint()));
            let slot = {
                let mut slots = self.slots.lock().map_err(|_| "the jump host pool is poisoned".to_owned())?;
                Arc::clone(slots.entry(key.clone()).or_insert_with(|| Arc::new(Mutex::new(Slot::Idle))))
            };
            let mut slot = slot.lock().await;
            match &*slot {
                Slot::Up(handle) if !handle.is_closed() => {
                    via = Some(Arc::clone(handle));
                    continue;
                }
                Slot::Failed(reason) => return Err(reason.clone()),
                Slot::Up(_) | Slot::Idle => {}
            }
            let connected = match (&via, index.checked_sub(1)) {
                (Some(previous), Some(before)) => {
                    match tunnel(previous, &hops[before], &hop.config, deadline).await {
                        Ok(stream) => handshake(stream, &hop.config, deadline).await,
                        Err(e) => Err(e),
                    }
                }
                _ => connect_direct(&hop.config, deadline).await,
            };
            match connected {
                Ok(handle) => {
                    tracing::debug!(hop = %hop.context(), "jump host connected");
                    let handle = Arc::new(handle);
                    *slot = Slot::Up(Arc::clone(&handle));
                    via = Some(handle);
                }
                Err(e) => {
                    // A tunnel refused by the hop before names that hop already.
                    let reason = if e.starts_with("via ") { e } else { format!("{}: {e}", hop.context()) };
                    *slot = Slot::Failed(reason.clone());
                    return Err(reason);
                }
            }
        }
        via.ok_or_else(|| "no jump host to go through".to_owned())
    }

    /// A raw stream to `config`'s address and port, opened by the last of `hops` (reached as in
    /// [`JumpPool::reach`]): what `engine ping` reads the host key of the next endpoint from.
    pub(crate) async fn open_through(
        &self,
        hops: &[Jump],
        config: &super::SshConfig,
        deadline: tokio::time::Instant,
    ) -> Result<russh::ChannelStream<russh::client::Msg>, String> {
        let last = hops.last().ok_or_else(|| "no jump host to go through".to_owned())?;
        let via = self.reach(hops, deadline).await?;
        tunnel(&via, last, config, deadline).await
    }
}
