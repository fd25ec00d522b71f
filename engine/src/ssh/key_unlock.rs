//! Passphrase-protected key files that the ssh-agent does not hold: unlocked at most once per
//! run, whatever the number of hosts, as `ssh` asks: `Enter passphrase for key '<path>': `, up to
//! [`TRIES`] times (ssh's `NumberOfPasswordPrompts`), an empty answer giving up at once.
//!
//! Asking is the binary's ([`AskPassphrase`], the terminal without echo); without an asker
//! every such key fails with the fix (`ssh-add`). Hosts connect in parallel: the first that
//! needs a key asks, the others wait for its answer; one prompt is shown at a time. What is
//! kept is the decrypted key (for the run, in memory); the passphrase is wiped once tried.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use russh::keys::PrivateKey;
use tokio::sync::watch;

/// A passphrase: wiped from memory when dropped.
pub type Secret = zeroize::Zeroizing<String>;

/// How many times a passphrase is asked for one key (OpenSSH's `NumberOfPasswordPrompts`).
pub(crate) const TRIES: usize = 3;

/// Asks the user for a passphrase (the binary: on the terminal, without echo).
pub trait AskPassphrase: Send + Sync {
    /// The answer to `prompt`, without its line break. `Err`: it cannot be asked (no
    /// terminal), in words.
    fn ask(&self, prompt: &str) -> Result<Secret, String>;
}

/// The outcome of unlocking one key file, shared by every host that offers it.
type Unlocked = Result<Arc<PrivateKey>, String>;

/// The key files unlocked (or given up on) in this run. One per run, shared by every host.
#[derive(Default)]
pub struct KeyUnlocker {
    ask: Option<Arc<dyn AskPassphrase>>,
    /// Per key file: its outcome, once known. The first host to need a file inserts it and
    /// asks (on a blocking thread that runs to the end even if that host stops waiting).
    keys: Mutex<HashMap<PathBuf, watch::Receiver<Option<Unlocked>>>>,
    /// Held while a prompt is on the terminal, so that two keys' prompts never interleave.
    prompting: Arc<Mutex<()>>,
}

impl std::fmt::Debug for KeyUnlocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyUnlocker").field("asks", &self.ask.is_some()).finish_non_exhaustive()
    }
}

impl KeyUnlocker {
    /// Unlocks keys with passphrases from `ask`.
    pub fn new(ask: Arc<dyn AskPassphrase>) -> Self {
        Self { ask: Some(ask), ..Self::default() }
    }

    /// The decrypted key of the passphrase-protected file `path`, asked for on the first call
    /// for that file; later calls (any host) get the same outcome without asking again.
    /// `Err`: why the key cannot be used, naming it, with the fix.
    pub(crate) async fn unlock(&self, path: &Path) -> Unlocked {
        let mut outcome = {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            match keys.get(path) {
                Some(outcome) => outcome.clone(),
                None => {
                    let (tell, outcome) = watch::channel(None);
                    keys.insert(path.to_owned(), outcome.clone());
                    self.start(path.to_owned(), tell);
                    outcome
                }
            }
        };
        let result = match outcome.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        result.unwrap_or_else(|| {
            Err(format!("private key {}: asking for its passphrase failed", path.display()))
        })
    }

    /// The key files given up on in this run, each with the reason.
    pub fn failed(&self) -> Vec<(PathBuf, String)> {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let mut failed: Vec<_> = keys
            .iter()
            .filter_map(|(path, outcome)| match &*outcome.borrow() {
                Some(Err(why)) => Some((path.clone(), why.clone())),
                _ => None,
            })
            .collect();
        failed.sort();
        failed
    }

    /// Unlocks `path` on a blocking thread (reading a terminal blocks), and tells the outcome.
    fn start(&self, path: PathBuf, tell: watch::Sender<Option<Unlocked>>) {
        let Some(ask) = self.ask.clone() else {
            tell.send_replace(Some(Err(no_terminal(
                &path,
                "engine asks for passphrases only on a terminal",
            ))));
            return;
        };
        let prompting = Arc::clone(&self.prompting);
        tokio::task::spawn_blocking(move || {
            let _prompt = prompting.lock().unwrap_or_else(PoisonError::into_inner);
            tell.send_replace(Some(unlock_file(&path, ask.as_ref()).map(Arc::new)));
        });
    }
}

/// The message for a key that cannot be asked for.
fn no_terminal(path: &Path, why: &str) -> String {
    let path = path.display();
    format!(
        "private key {path} is passphrase-protected and the ssh-agent does not hold it, and its \
         passphrase cannot be asked ({why}); add it with `ssh-add {path}`, or run engine on a \
         terminal to be asked for it"
    )
}

/// Reads `path` and asks for its passphrase until it decrypts the key, [`TRIES`] times at most.
fn unlock_file(path: &Path, ask: &dyn AskPassphrase) -> Result<PrivateKey, String> {
    let shown = path.display();
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| format!("cannot read private key {shown}: {e}"))?,
    );
    let prompt = format!("Enter passphrase for key '{shown}': ");
    for _ in 0..TRIES {
        let passphrase = ask.ask(&prompt).map_err(|why| no_terminal(path, &why))?;
        if passphrase.is_empty() {
            // As ssh: an empty answer skips the key.
            return Err(format!("private key {shown}: no passphrase given, the key was not used"));
        }
        if let Ok(key) = russh::keys::decode_secret_key(&text, Some(&passphrase)) {
            return Ok(key);
        }
    }
    Err(format!(
        "private key {shown}: wrong passphrase {TRIES} times, the key was not used; check it with \
         `ssh-keygen -y -f {shown}`, or add the key with `ssh-add {shown}`"
    ))
}

/// The run's [`KeyUnlocker`], as a field of [`super::SshConfig`]: every host of a run holds
/// the same one (equal when it is the same one).
#[derive(Debug, Clone, Default)]
pub struct Keys(pub Arc<KeyUnlocker>);

impl PartialEq for Keys {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Keys {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers from a list, counting the prompts.
    struct Answers {
        answers: Mutex<Vec<&'static str>>,
        prompts: AtomicUsize,
    }

    impl Answers {
        fn new(answers: &[&'static str]) -> Arc<Self> {
            let mut answers = answers.to_vec();
            answers.reverse();
            Arc::new(Self { answers: Mutex::new(answers), prompts: AtomicUsize::new(0) })
        }
    }

    impl AskPassphrase for Answers {
        fn ask(&self, prompt: &str) -> Result<Secret, String> {
            assert!(prompt.starts_with("Enter passphrase for key '") && prompt.ends_with("': "), "{prompt}");
            self.prompts.fetch_add(1, Ordering::SeqCst);
            let answer = self.answers.lock().unwrap().pop().ok_or("no terminal")?;
            Ok(Secret::new(answer.to_owned()))
        }
    }

    /// A key made by `ssh-keygen -t KIND -N PASSPHRASE` (OpenSSH format, bcrypt-pbkdf: ssh-keygen's
    /// default), with its `.pub`.
    fn keygen(dir: &Path, kind: &str, passphrase: &str) -> PathBuf {
        keygen_as(dir, kind, passphrase, "RFC4716")
    }

    /// As [`keygen`], in `format` (`-m`: `RFC4716` is OpenSSH's own, `PEM` the legacy one).
    fn keygen_as(dir: &Path, kind: &str, passphrase: &str, format: &str) -> PathBuf {
        let path = dir.join(format!("id_{kind}_{format}"));
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-m", format, "-N", passphrase, "-C", "test", "-f"])
            .arg(&path)
            .status();
        assert!(status.is_ok_and(|s| s.success()), "ssh-keygen is needed for this test");
        path
    }

    #[tokio::test]
    async fn encrypted_ed25519_ecdsa_rsa_and_pem_rsa_keys_decrypt_with_their_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        for (kind, format) in
            [("ed25519", "RFC4716"), ("rsa", "RFC4716"), ("ecdsa", "RFC4716"), ("rsa", "PEM")]
        {
            let path = keygen_as(dir.path(), kind, "correct horse", format);
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(matches!(
                russh::keys::decode_secret_key(&text, None),
                Err(russh::keys::Error::KeyIsEncrypted)
            ));
            let answers = Answers::new(&["correct horse"]);
            let unlocker = KeyUnlocker::new(answers.clone());
            let key = unlocker.unlock(&path).await.unwrap();
            let public = russh::keys::load_public_key(path.with_extension("pub")).unwrap();
            assert_eq!(key.public_key().key_data(), public.key_data(), "{kind} {format}");
            assert_eq!(answers.prompts.load(Ordering::SeqCst), 1);
        }
    }

    #[tokio::test]
    async fn a_wrong_passphrase_is_asked_again_then_the_key_is_given_up_once_for_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = keygen(dir.path(), "ed25519", "right");
        // Wrong, then right: asked twice.
        let answers = Answers::new(&["wrong", "right"]);
        let unlocker = KeyUnlocker::new(answers.clone());
        assert!(unlocker.unlock(&path).await.is_ok());
        assert_eq!(answers.prompts.load(Ordering::SeqCst), 2);

        // Wrong three times: given up, naming the key, without the passphrase; never asked again.
        let answers = Answers::new(&["wrong1", "wrong2", "wrong3", "right"]);
        let unlocker = KeyUnlocker::new(answers.clone());
        let err = unlocker.unlock(&path).await.unwrap_err();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("wrong passphrase 3 times"),
            "{err}"
        );
        assert!(!err.contains("wrong1") && !err.contains("right"), "{err}");
        assert_eq!(unlocker.unlock(&path).await.unwrap_err(), err);
        assert_eq!(answers.prompts.load(Ordering::SeqCst), 3);
        assert_eq!(unlocker.failed(), vec![(path.clone(), err)]);

        // An empty answer gives up at once, as ssh does.
        let answers = Answers::new(&["", "right"]);
        let unlocker = KeyUnlocker::new(answers.clone());
        let err = unlocker.unlock(&path).await.unwrap_err();
        assert!(err.contains("no passphrase given"), "{err}");
        assert_eq!(answers.prompts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hosts_unlocking_the_same_key_at_once_share_one_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let path = keygen(dir.path(), "ed25519", "pw");
        let answers = Answers::new(&["pw"]);
        let unlocker = Arc::new(KeyUnlocker::new(answers.clone()));
        let hosts: Vec<_> = (0..8)
            .map(|_| {
                let (unlocker, path) = (Arc::clone(&unlocker), path.clone());
                tokio::spawn(async move { unlocker.unlock(&path).await.map(|_| ()) })
            })
            .collect();
        for host in hosts {
            assert_eq!(host.await.unwrap(), Ok(()));
        }
        assert_eq!(answers.prompts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn without_an_asker_the_error_names_the_key_and_the_fix() {
        let path = Path::new("/home/u/.ssh/id_ed25519");
        let err = KeyUnlocker::default().unlock(path).await.unwrap_err();
        assert!(err.contains("ssh-add /home/u/.ssh/id_ed25519") && err.contains("on a terminal"), "{err}");
        // An asker that finds no terminal says the same, with its reason.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_ed25519");
        std::fs::write(&path, "key").unwrap();
        let err = KeyUnlocker::new(Answers::new(&[])).unlock(&path).await.unwrap_err();
        assert!(err.contains("no terminal") && err.contains("ssh-add"), "{err}");
    }
}
