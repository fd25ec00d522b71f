//! Writing a journal: a subscriber to run events.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::JournalError;
use super::key::JournalKey;
use super::record::{Finished, Header, Record, TaskLine};
use crate::events::{Event, Subscriber};

/// Appends task outcomes to a journal file as they arrive. Events reach it redacted, like
/// every subscriber (see [`crate::events::EventBus`]).
#[derive(Debug)]
pub struct JournalWriter {
    file: File,
    path: PathBuf,
    /// Seals each line, chained to the one before (see [`super::key`]).
    key: JournalKey,
    /// The MAC of the last line written (`""` before the header).
    prev: String,
    aborted: bool,
    /// Set after the first failed write, so the warning is given once.
    broken: bool,
    /// The header's `started_at_ms`: task start times are written as offsets from it.
    started_at_ms: u64,
}

impl JournalWriter {
    /// Creates the journal of run `header.id` in `dir` (made 0700 if missing) with mode 0600,
    /// and writes its header line. Every line is sealed with `key`.
    pub fn create(dir: &Path, header: &Header, key: &JournalKey) -> Result<JournalWriter, JournalError> {
        let io = |what: String| move |source| JournalError::Io { what, source };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(format!("cannot create the journal folder {}", dir.display())))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("cannot restrict the journal folder {}", dir.display())))?;
        let path = super::path_of(dir, &header.id);
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(format!("cannot create the journal {}", path.display())))?;
        let mut writer = JournalWriter {
            file,
            path,
            key: key.clone(),
            prev: String::new(),
            aborted: false,
            broken: false,
            started_at_ms: header.started_at_ms,
        };
        writer.write(&Record::Header(header.clone()));
        if writer.broken {
            return Err(JournalError::Io {
                what: format!("cannot write the journal {}", writer.path.display()),
                source: std::io::Error::other("the header could not be written"),
            });
        }
        Ok(writer)
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one record as one sealed line, with a single `write` so a kill leaves whole lines.
    fn write(&mut self, record: &Record) {
        let Ok(body) = serde_json::to_string(record) else { return };
        let (mut line, mac) = self.key.seal(&self.prev, &body);
        self.prev = mac;
        line.push('\n');
        if let Err(e) = self.file.write_all(line.as_bytes())
            && !self.broken
        {
            self.broken = true;
            tracing::warn!(journal = %self.path.display(), error = %e, "cannot write the run journal");
        }
    }
}

impl Subscriber for JournalWriter {
    fn on_event(&mut self, event: &Event) {
        match event {
            Event::TaskFinished(r) => self.write(&Record::Task(TaskLine {
                id: r.id,
                host: r.host.clone(),
                task: r.task.clone(),
                status: r.status,
                done_in: None,
                start_ms: (r.started_at_ms > 0).then(|| r.started_at_ms.saturating_sub(self.started_at_ms)),
                elapsed_ms: r.elapsed_ms,
                message: r.error.clone(),
            })),
            Event::TaskDone { id, host, task, status, run } => self.write(&Record::Task(TaskLine {
                id: *id,
                host: host.clone(),
                task: task.clone(),
                status: *status,
                done_in: Some(run.clone()),
                start_ms: None,
                elapsed_ms: 0,
                message: None,
            })),
            Event::Aborted { .. } => self.aborted = true,
            Event::RunFinished { elapsed_ms, interrupted, critical_path_ms, critical_path } => {
                self.write(&Record::Finished(Finished {
                    interrupted: *interrupted,
                    aborted: self.aborted,
                    elapsed_ms: *elapsed_ms,
                    critical_path_ms: *critical_path_ms,
                    critical_path: critical_path.clone(),
                }))
            }
            _ => {}
        }
    }

    fn finish(&mut self) {
        let _ = self.file.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::events::{Status, TaskReport};
    use crate::ids::TaskId;
    use crate::journal::Journal;
    use crate::journal::inputs::RunInputs;

    fn header(id: &str) -> Header {
        Header {
            format: Header::FORMAT,
            id: id.to_owned(),
            engine: "0.0.0".into(),
            started_at_ms: 1,
            inputs: RunInputs {
                playbook: "/p/site.rhai".into(),
                inventory: "/p/inventory.yml".into(),
                extra_vars: vec!["version".into()],
                tags: Some(vec!["certs".into()]),
                ..RunInputs::default()
            },
            resumes: None,
            deps: BTreeMap::from([(TaskId(2), vec![TaskId(0)])]),
            fingerprints: BTreeMap::from([
                (TaskId(0), "aa".into()),
                (TaskId(1), "bb".into()),
                (TaskId(2), "cc".into()),
            ]),
        }
    }

    fn finished(id: TaskId, status: Status) -> Event {
        Event::TaskFinished(TaskReport {
            id,
            host: "h".into(),
            task: format!("t{id}"),
            module: "command".into(),
            location: "p:1:1".into(),
            status,
            changes: Vec::new(),
            diff: None,
            error: (status == Status::Failed).then(|| "exit 1: no".to_owned()),
            note: None,
            elapsed_ms: 3,
            // Never started when skipped; the header's run started at 1.
            started_at_ms: if status == Status::Skipped { 0 } else { 11 },
            output: None,
        })
    }

    #[test]
    fn round_trip_with_private_modes() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(".engine/runs");
        let mut w = JournalWriter::create(&dir, &header("r1"), &key()).unwrap();
        w.on_event(&finished(TaskId(0), Status::Changed));
        w.on_event(&Event::TaskDone {
            id: TaskId(1),
            host: "h".into(),
            task: "t1".into(),
            status: Status::Ok,
            run: "r0".into(),
        });
        w.on_event(&finished(TaskId(2), Status::Failed));
        w.on_event(&Event::Aborted { grace_expired: true });
        w.on_event(&Event::RunFinished {
            elapsed_ms: 5,
            interrupted: true,
            critical_path_ms: 4,
            critical_path: vec![TaskId(0), TaskId(2)],
        });
        w.finish();
        let path = w.path().to_owned();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);

        let j = Journal::load(&path, &key()).unwrap();
        assert_eq!(j.header, header("r1"));
        assert!(
            j.succeeded(TaskId(0))
                && j.succeeded(TaskId(1))
                && !j.succeeded(TaskId(2))
                && !j.succeeded(TaskId(3))
        );
        assert_eq!((j.done_in(TaskId(0)), j.done_in(TaskId(1))), ("r1", "r0"));
        let t2 = &j.tasks[&TaskId(2)];
        assert_eq!((t2.start_ms, t2.elapsed_ms, t2.message.as_deref()), (Some(10), 3, Some("exit 1: no")));
        assert_eq!((j.tasks[&TaskId(1)].start_ms, j.tasks[&TaskId(0)].message.as_deref()), (None, None));
        assert_eq!(
            j.finished,
            Some(Finished {
                interrupted: true,
                aborted: true,
                elapsed_ms: 5,
                critical_path_ms: 4,
                critical_path: vec![TaskId(0), TaskId(2)],
            })
        );
        assert_eq!(crate::journal::latest(&dir).unwrap().as_deref(), Some("r1"));
        assert!(
            JournalWriter::create(&dir, &header("r1"), &key()).is_err(),
            "a journal is never overwritten"
        );
    }

    fn key() -> JournalKey {
        JournalKey::from_bytes([1; 32])
    }

    #[test]
    fn a_killed_run_leaves_a_readable_prefix() {
        let root = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::create(root.path(), &header("r2"), &key()).unwrap();
        w.on_event(&finished(TaskId(0), Status::Ok));
        let mut text = std::fs::read_to_string(w.path()).unwrap();
        // The process died in the middle of a line.
        text.push_str("{\"kind\":\"task\",\"id\":1,\"ho");
        let j = Journal::parse(w.path(), &text, &key()).unwrap();
        assert!(j.succeeded(TaskId(0)) && !j.succeeded(TaskId(1)));
        assert_eq!(j.finished, None);
        // A bad line that is not the last is an error, with its line number.
        let bad = format!("{text}\n{{}}\n");
        let e = Journal::parse(w.path(), &bad, &key()).unwrap_err().to_string();
        assert!(e.contains(":3:"), "{e}");
    }

    /// Every line is sealed and chained: one changed byte, a line dropped, lines swapped, a line
    /// added, or another workspace's key, and the journal is refused at that line.
    #[test]
    fn a_changed_dropped_swapped_or_foreign_line_is_refused_at_its_number() {
        let root = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::create(root.path(), &header("r3"), &key()).unwrap();
        w.on_event(&finished(TaskId(0), Status::Failed));
        w.on_event(&finished(TaskId(1), Status::Ok));
        w.on_event(&Event::RunFinished {
            elapsed_ms: 5,
            interrupted: false,
            critical_path_ms: 0,
            critical_path: Vec::new(),
        });
        let text = std::fs::read_to_string(w.path()).unwrap();
        assert!(Journal::parse(w.path(), &text, &key()).is_ok());
        let lines: Vec<&str> = text.lines().collect();
        let join = |lines: &[&str]| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        let refused_at = |text: &str, k: &JournalKey| match Journal::parse(w.path(), text, k) {
            Err(crate::journal::JournalError::Unverified { line, .. }) => line,
            other => panic!("not refused as unverified: {other:?}"),
        };
        // The failed task claims success: one changed byte.
        let forged = text.replacen("\"failed\"", "\"ok\"", 1);
        assert_ne!(forged, text);
        assert_eq!(refused_at(&forged, &key()), 2);
        assert_eq!(refused_at(&join(&[lines[0], lines[2], lines[3]]), &key()), 2, "a line dropped");
        assert_eq!(refused_at(&join(&[lines[0], lines[2], lines[1], lines[3]]), &key()), 2, "swapped");
        assert_eq!(refused_at(&join(&[lines[0], lines[1], lines[1], lines[2]]), &key()), 3, "repeated");
        assert_eq!(refused_at(&text, &JournalKey::from_bytes([2; 32])), 1, "another workspace's key");
        // A line without a MAC (an older engine's): the format says so.
        let old = text.replace("\"format\":2", "\"format\":1");
        let unsealed =
            format!("{}\n", old.lines().next().unwrap().split(",\"mac\"").next().unwrap().to_owned() + "}");
        let e = Journal::parse(w.path(), &unsealed, &key()).unwrap_err().to_string();
        assert!(e.contains("journal format 1 (this engine reads 2)"), "{e}");
    }
}
