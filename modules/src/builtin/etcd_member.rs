//! `etcd_member`: one member of an etcd cluster present or absent, through `etcdctl` on a host
//! that reaches the cluster: etcd's "Runtime reconfiguration" (`member add` before the new
//! member starts, `member remove` by ID), made idempotent.
//!
//! Planning reads `etcdctl member list -w json`, parsed strictly (it is the cluster's answer,
//! relayed by a managed host: hostile input), and plans exactly one `member add` or `member
//! remove`, or nothing.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::builtin::kubectl::HttpsUrl;
use crate::validate::Validate;
use contract::arg::{AbsolutePath, Operand, Resolved, Sealed, Stage};
use contract::error::{ArgsError, ModuleError};
use contract::host::{Exec, Host};
use contract::module::{Action, Context, Module, Outputs, Plan};
use contract::remote::run_checked;
use contract::shell::join;
use contract::untrusted::{Malformed, has_invisible};

const DEFAULT_PKI: &str = "/etc/kubernetes/pki/etcd";
/// etcdctl's own bound on one request (its default is 5 s).
const COMMAND_TIMEOUT: &str = "--command-timeout=15s";

/// Adds or removes one member of an etcd cluster with the host's `etcdctl` (etcd's "Runtime
/// reconfiguration"), talking to `endpoint` over TLS with the client certificate (`ca`, `cert`,
/// `key`; default the etcd library's /etc/kubernetes/pki/etcd/{ca,client,client-key}.pem).
/// `state: "present"` (the default): `etcdctl member add NAME --peer-urls=PEER_URL`, unless a
/// member already has that peer URL; run it before the new member starts, which then joins with
/// `--initial-cluster-state=existing`. A member of that name with another peer URL is refused.
/// `state: "absent"`: `etcdctl member remove ID`, the ID read from `etcdctl member list` by the
/// member's name; nothing when no member has it. The removal is refused when fewer than
/// `min_members` (default 1) members would remain, before anything changes. The member list is
/// read strictly (unique IDs, printable names, https:// URLs); anything else fails the task.
/// Outputs: `members` (the names in the list as read, an unstarted member as ""), `id` (the
/// member's ID in hex, as etcdctl prints it; "" when there is none).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, bound = "")]
#[schemars(rename = "EtcdMemberArgs", bound = "")]
pub struct EtcdMemberArgs<S: Stage = Sealed> {
    /// The member's name (its etcd `--name`), e.g. "etcd3".
    pub name: S::Of<Operand>,
    /// "present" (default) or "absent".
    pub state: Option<MemberState>,
    /// present: the member's peer URL, e.g. "https://10.0.0.14:2380".
    pub peer_url: Option<S::Of<HttpsUrl>>,
    /// The client URL of a member etcdctl talks to, e.g. "https://10.0.0.11:2379".
    pub endpoint: S::Of<HttpsUrl>,
    /// The CA certificate on the host (default /etc/kubernetes/pki/etcd/ca.pem).
    pub ca: Option<S::Of<AbsolutePath>>,
    /// The client certificate on the host (default /etc/kubernetes/pki/etcd/client.pem).
    pub cert: Option<S::Of<AbsolutePath>>,
    /// The client certificate's key on the host (default /etc/kubernetes/pki/etcd/client-key.pem).
    pub key: Option<S::Of<AbsolutePath>>,
    /// absent: refuse the removal when fewer members would remain (default 1).
    pub min_members: Option<u32>,
}

contract::resolve_struct!(EtcdMemberArgs<S> { name, state, peer_url, endpoint, ca, cert, key, min_members });
contract::resolve_as_is!(MemberState);

/// Whether the member should be in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// `etcdctl member add` unless it is a member.
    Present,
    /// `etcdctl member remove` if it is a member.
    Absent,
}

impl<S: Stage> Validate for EtcdMemberArgs<S> {
    fn validate(self) -> Result<Self, ArgsError> {
        let state = self.state.unwrap_or(MemberState::Present);
        match state {
            MemberState::Present if self.peer_url.is_none() => {
                return Err(ArgsError::invalid("peer_url", "state present needs peer_url"));
            }
            MemberState::Present if self.min_members.is_some() => {
                return Err(ArgsError::invalid("min_members", "min_members applies to state absent only"));
            }
            MemberState::Absent if self.peer_url.is_some() => {
                return Err(ArgsError::invalid("peer_url", "state absent finds the member by its name"));
            }
            _ => {}
        }
        if self.min_members == Some(0) {
            return Err(ArgsError::invalid("min_members", "min_members must be at least 1"));
        }
        Ok(self)
    }
}

impl EtcdMemberArgs<Resolved> {
    /// `etcdctl --endpoints=E --cacert=C --cert=.. --key=.. --command-timeout=15s WORDS...`.
    fn etcdctl(&self, words: &[String]) -> Vec<String> {
        let path = |given: &Option<AbsolutePath>, file: &str| {
            given.as_ref().map_or_else(|| format!("{DEFAULT_PKI}/{file}"), ToString::to_string)
        };
        let mut argv = vec![
            "etcdctl".to_owned(),
            format!("--endpoints={}", self.endpoint.as_str()),
            format!("--cacert={}", path(&self.ca, "ca.pem")),
            format!("--cert={}", path(&self.cert, "client.pem")),
            format!("--key={}", path(&self.key, "client-key.pem")),
            COMMAND_TIMEOUT.to_owned(),
        ];
        argv.extend(words.iter().cloned());
        argv
    }
}

/// One member as `etcdctl member list -w json` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Member {
    #[serde(rename = "ID")]
    id: u64,
    /// Empty while a member added has not started yet.
    #[serde(default)]
    name: String,
    #[serde(rename = "peerURLs", default)]
    peer_urls: Vec<String>,
    #[serde(rename = "clientURLs", default)]
    client_urls: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct MemberList {
    #[serde(default)]
    members: Vec<Member>,
}

#[derive(Debug, Deserialize)]
struct Added {
    member: Member,
}

/// The members in etcdctl's JSON, checked: IDs non-zero and unique, names printable and unique
/// (an unstarted member has none), every URL an https:// URL without whitespace.
fn parse_members(text: &str) -> Result<Vec<Member>, Malformed> {
    let list: MemberList = serde_json::from_str(text)
        .map_err(|e| Malformed::whole(format!("not etcdctl's JSON member list: {e}")))?;
    check_members(&list.members)?;
    Ok(list.members)
}

fn check_members(members: &[Member]) -> Result<(), Malformed> {
    for (i, m) in members.iter().enumerate() {
        let id = format!("{:x}", m.id);
        if m.id == 0 {
            return Err(Malformed::new(&id, "a member ID of 0"));
        }
        if members[..i].iter().any(|o| o.id == m.id) {
            return Err(Malformed::new(&id, "a member ID listed twice"));
        }
        if has_invisible(&m.name) || m.name.chars().any(char::is_whitespace) || m.name.len() > 253 {
            return Err(Malformed::new(&m.name, "a member name with whitespace or invisible characters"));
        }
        if !m.name.is_empty() && members[..i].iter().any(|o| o.name == m.name) {
            return Err(Malformed::new(&m.name, "a member name listed twice"));
        }
        for url in m.peer_urls.iter().chain(&m.client_urls) {
            let fine = url.strip_prefix("https://").is_some_and(|rest| {
                !rest.is_empty()
                    && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
                    && !has_invisible(rest)
            });
            if !fine {
                return Err(Malformed::new(url, format!("member {id}: not an https:// URL")));
            }
        }
    }
    Ok(())
}

/// What to do with the member list as read: `Ok(None)` for nothing, or the one change.
fn decide(args: &EtcdMemberArgs<Resolved>, members: &[Member]) -> Result<Option<Change>, ModuleError> {
    let name = args.name.as_str();
    match args.state.unwrap_or(MemberState::Present) {
        MemberState::Present => {
            let peer = args.peer_url.as_ref().map(HttpsUrl::as_str).unwrap_or_default();
            if let Some(m) = members.iter().find(|m| m.peer_urls.iter().any(|u| u == peer)) {
                if !m.name.is_empty() && m.name != name {
                    return Err(ModuleError::Refused(format!(
                        "etcd member {:x} named {:?} already has the peer URL {peer}, not {name:?}",
                        m.id, m.name
                    )));
                }
                return Ok(None);
            }
            if let Some(m) = members.iter().find(|m| m.name == name) {
                return Err(ModuleError::Refused(format!(
                    "etcd member {name:?} ({:x}) has the peer URLs {:?}, not {peer}: remove it first",
                    m.id, m.peer_urls
                )));
            }
            Ok(Some(Change::Add { peer: peer.to_owned() }))
        }
        MemberState::Absent => {
            let Some(m) = members.iter().find(|m| m.name == name) else {
                return Ok(None);
            };
            let min = args.min_members.unwrap_or(1) as usize;
            let left = members.len() - 1;
            if left < min {
                return Err(ModuleError::Refused(format!(
                    "removing etcd member {name:?} would leave {left} of {} members, fewer than {min}",
                    members.len()
                )));
            }
            Ok(Some(Change::Remove { id: m.id }))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Add { peer: String },
    Remove { id: u64 },
}

fn names(members: &[Member]) -> Value {
    Value::Array(members.iter().map(|m| Value::String(m.name.clone())).collect())
}

/// The `etcd_member` module bound to its arguments.
#[derive(Debug, Clone)]
pub struct EtcdMember {
    args: EtcdMemberArgs<Resolved>,
}

impl EtcdMember {
    pub fn new(args: EtcdMemberArgs<Resolved>) -> Self {
        Self { args }
    }
}

async fn etcdctl(host: &dyn Host, argv: &[String]) -> Result<String, ModuleError> {
    Ok(run_checked(host, Exec::new(join(argv))).await?.stdout_text())
}

#[async_trait]
impl Module for EtcdMember {
    fn name(&self) -> &'static str {
        "etcd_member"
    }

    async fn plan(&self, cx: &Context<'_>) -> Result<Plan, ModuleError> {
        let a = &self.args;
        let list = a.etcdctl(&["member".into(), "list".into(), "--write-out=json".into()]);
        let text = etcdctl(cx.host, &list).await?;
        let members =
            parse_members(&text).map_err(|e| e.on(cx.host.name(), "the output of `etcdctl member list`"))?;
        let mut outputs = Outputs::new();
        outputs.insert("members".into(), names(&members));
        let name = a.name.as_str().to_owned();
        let current = members.iter().find(|m| m.name == name).map(|m| format!("{:x}", m.id));
        let Some(change) = decide(a, &members)? else {
            let id = match a.state.unwrap_or(MemberState::Present) {
                MemberState::Present => {
                    let peer = a.peer_url.as_ref().map(HttpsUrl::as_str).unwrap_or_default();
                    members
                        .iter()
                        .find(|m| m.peer_urls.iter().any(|u| u == peer))
                        .map(|m| format!("{:x}", m.id))
                }
                MemberState::Absent => None,
            };
            outputs.insert("id".into(), Value::String(id.or(current).unwrap_or_default()));
            return Ok(Plan { outputs, ..Plan::unchanged() });
        };
        let (line, argv) = match &change {
            Change::Add { peer } => (
                format!("etcdctl member add {name} --peer-urls={peer}"),
                a.etcdctl(&[
                    "member".into(),
                    "add".into(),
                    format!("--peer-urls={peer}"),
                    "--write-out=json".into(),
                    "--".into(),
                    name.clone(),
                ]),
            ),
            Change::Remove { id } => (
                format!("etcdctl member remove {id:x} ({name}; {} members left)", members.len() - 1),
                a.etcdctl(&["member".into(), "remove".into(), "--".into(), format!("{id:x}")]),
            ),
        };
        outputs.insert("id".into(), Value::String(current.unwrap_or_default()));
        Ok(Plan {
            changes: vec![line],
            outputs,
            action: Some(Box::new(MemberAct { argv, change, members })),
            ..Plan::default()
        })
    }
}

#[derive(Debug)]
struct MemberAct {
    argv: Vec<String>,
    change: Change,
    members: Vec<Member>,
}

#[async_trait]
impl Action for MemberAct {
    async fn apply(self: Box<Self>, host: &dyn Host) -> Result<Outputs, ModuleError> {
        let out = etcdctl(host, &self.argv).await?;
        let mut outputs = Outputs::new();
        match self.change {
            Change::Add { .. } => {
                let added: Added = serde_json::from_str(&out).map_err(|e| {
                    Malformed::whole(format!("not etcdctl's JSON answer to member add: {e}"))
                        .on(host.name(), "the output of `etcdctl member add`")
                })?;
                check_members(std::slice::from_ref(&added.member))
                    .map_err(|e| e.on(host.name(), "the output of `etcdctl member add`"))?;
                let mut members = self.members;
                outputs.insert("id".into(), Value::String(format!("{:x}", added.member.id)));
                members.push(added.member);
                outputs.insert("members".into(), names(&members));
            }
            Change::Remove { id } => {
                let members: Vec<Member> = self.members.into_iter().filter(|m| m.id != id).collect();
                outputs.insert("id".into(), Value::String(format!("{id:x}")));
                outputs.insert("members".into(), names(&members));
            }
        }
        Ok(outputs)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use contract::host::{ExecOutput, HostError};
    use contract::module::PlanOptions;
    use serde_json::json;

    use super::*;

    fn args(value: Value) -> Result<EtcdMemberArgs<Resolved>, String> {
        crate::validate::resolved::<EtcdMemberArgs>(value).map_err(|e| e.to_string())
    }

    const LIST: &str = r#"{"header":{"cluster_id":17237436991929493444,"member_id":9372538179322589801,"raft_term":2},
      "members":[
        {"ID":9372538179322589801,"name":"etcd0","peerURLs":["https://10.0.0.11:2380"],"clientURLs":["https://10.0.0.11:2379"]},
        {"ID":10501334649042878790,"name":"etcd1","peerURLs":["https://10.0.0.12:2380"],"clientURLs":["https://10.0.0.12:2379"]},
        {"ID":18249187646912138824,"name":"etcd2","peerURLs":["https://10.0.0.13:2380"],"clientURLs":["https://10.0.0.13:2379"]}]}"#;

    fn add3() -> Value {
        json!({"name": "etcd3", "peer_url": "https://10.0.0.14:2380", "endpoint": "https://10.0.0.11:2379"})
    }

    fn remove(name: &str, min: u32) -> Value {
        json!({"name": name, "state": "absent", "endpoint": "https://10.0.0.11:2379", "min_members": min})
    }

    /// A host that answers every command with `stdout`; records what ran.
    struct Scripted {
        stdout: Vec<String>,
        ran: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Host for Scripted {
        fn name(&self) -> &str {
            "etcd0"
        }

        async fn exec(&self, exec: Exec) -> Result<ExecOutput, HostError> {
            let mut ran = self.ran.lock().unwrap();
            let out = self.stdout[ran.len().min(self.stdout.len() - 1)].clone();
            ran.push(exec.command);
            Ok(ExecOutput { status: Some(0), stdout: out.into_bytes(), stderr: Vec::new() })
        }
    }

    async fn plan(value: Value, answers: &[&str]) -> (Result<Plan, ModuleError>, Scripted) {
        let host =
            Scripted { stdout: answers.iter().map(|s| (*s).to_owned()).collect(), ran: Mutex::default() };
        let module = EtcdMember::new(args(value).unwrap());
        let plan = module.plan(&Context::new(&host, PlanOptions::default())).await;
        (plan, host)
    }

    #[tokio::test]
    async fn adds_a_member_once_then_changes_nothing() {
        let added = r#"{"header":{"cluster_id":1,"member_id":2,"raft_term":2},
          "member":{"ID":1311154217325186597,"peerURLs":["https://10.0.0.14:2380"]},"members":[]}"#;
        let (p, host) = plan(add3(), &[LIST, added]).await;
        let p = p.unwrap();
        assert_eq!(p.changes, ["etcdctl member add etcd3 --peer-urls=https://10.0.0.14:2380"]);
        assert_eq!(host.ran.lock().unwrap().len(), 1, "planning only reads");
        assert!(host.ran.lock().unwrap()[0].contains("'member' 'list' '--write-out=json'"));
        let outputs = p.action.unwrap().apply(&host).await.unwrap();
        assert_eq!(outputs["id"], "123227d0596c4e25");
        assert_eq!(outputs["members"], json!(["etcd0", "etcd1", "etcd2", ""]));
        let added_with = host.ran.lock().unwrap()[1].clone();
        assert_eq!(
            added_with,
            "'etcdctl' '--endpoints=https://10.0.0.11:2379' '--cacert=/etc/kubernetes/pki/etcd/ca.pem' \
             '--cert=/etc/kubernetes/pki/etcd/client.pem' '--key=/etc/kubernetes/pki/etcd/client-key.pem' \
             '--command-timeout=15s' 'member' 'add' '--peer-urls=https://10.0.0.14:2380' '--write-out=json' \
             '--' 'etcd3'"
        );
        // Added but not started yet (no name), then started: both are "present".
        let unstarted = LIST
            .replace("]}]}", "]},{\"ID\":1311154217325186597,\"peerURLs\":[\"https://10.0.0.14:2380\"]}]}");
        let started = LIST.replace(
            "]}]}",
            "]},{\"ID\":1311154217325186597,\"name\":\"etcd3\",\"peerURLs\":[\"https://10.0.0.14:2380\"],\
             \"clientURLs\":[\"https://10.0.0.14:2379\"]}]}",
        );
        for list in [unstarted, started] {
            let (p, _) = plan(add3(), &[&list]).await;
            let p = p.unwrap();
            assert!(!p.is_change(), "{list}");
            assert_eq!(p.outputs["id"], "123227d0596c4e25");
        }
    }

    #[tokio::test]
    async fn a_name_or_peer_url_taken_otherwise_is_refused() {
        let mut other = add3();
        other["name"] = json!("etcd2");
        other["peer_url"] = json!("https://10.0.0.99:2380");
        let error = plan(other, &[LIST]).await.0.unwrap_err().to_string();
        assert!(error.contains("remove it first"), "{error}");
        let mut stolen = add3();
        stolen["peer_url"] = json!("https://10.0.0.13:2380");
        let error = plan(stolen, &[LIST]).await.0.unwrap_err().to_string();
        assert!(error.contains("already has the peer URL"), "{error}");
    }

    #[tokio::test]
    async fn removes_by_the_id_read_and_keeps_the_minimum() {
        let (p, host) = plan(remove("etcd2", 2), &[LIST, "Member fd422379fda50e48 removed\n"]).await;
        let p = p.unwrap();
        assert_eq!(p.changes, ["etcdctl member remove fd422379fda50e48 (etcd2; 2 members left)"]);
        let outputs = p.action.unwrap().apply(&host).await.unwrap();
        assert_eq!(outputs["members"], json!(["etcd0", "etcd1"]));
        assert!(host.ran.lock().unwrap()[1].ends_with("'member' 'remove' '--' 'fd422379fda50e48'"));
        let error = plan(remove("etcd2", 3), &[LIST]).await.0.unwrap_err().to_string();
        assert!(error.contains("would leave 2 of 3 members, fewer than 3"), "{error}");
        let (p, _) = plan(remove("etcd7", 3), &[LIST]).await;
        assert!(!p.unwrap().is_change(), "not a member: nothing to do");
    }

    #[test]
    fn hostile_member_lists_are_refused() {
        assert_eq!(parse_members(LIST).unwrap().len(), 3);
        for bad in [
            "Member list: etcd0",
            r#"{"members":[{"ID":"1","name":"a"}]}"#,
            r#"{"members":[{"ID":0,"name":"a"}]}"#,
            r#"{"members":[{"ID":1,"name":"a"},{"ID":1,"name":"b"}]}"#,
            r#"{"members":[{"ID":1,"name":"a"},{"ID":2,"name":"a"}]}"#,
            r#"{"members":[{"ID":1,"name":"a\u001b[2J"}]}"#,
            r#"{"members":[{"ID":1,"name":"a b"}]}"#,
            r#"{"members":[{"ID":1,"name":"a","peerURLs":["http://10.0.0.1:2380"]}]}"#,
            r#"{"members":[{"ID":1,"name":"a","peerURLs":["https://10.0.0.1:2380 --x"]}]}"#,
            r#"{"members":[{"ID":-1,"name":"a"}]}"#,
        ] {
            assert!(parse_members(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checks_arguments_per_state() {
        assert!(args(add3()).is_ok());
        assert!(
            args(json!({"name": "etcd3", "endpoint": "https://10.0.0.11:2379"}))
                .unwrap_err()
                .contains("peer_url")
        );
        let mut with_min = add3();
        with_min["min_members"] = json!(3);
        assert!(args(with_min).unwrap_err().contains("state absent only"));
        assert!(args(remove("etcd3", 0)).unwrap_err().contains("at least 1"));
        let mut absent_peer = remove("etcd3", 3);
        absent_peer["peer_url"] = json!("https://10.0.0.14:2380");
        assert!(args(absent_peer).is_err());
        assert!(args(json!({"name": "--x", "state": "absent", "endpoint": "https://a:2379"})).is_err());
        assert!(args(json!({"name": "e", "state": "absent", "endpoint": "http://a:2379"})).is_err());
        assert!(
            args(json!({"name": "e", "state": "absent", "endpoint": "https://a:2379", "ca": "ca.pem"}))
                .is_err()
        );
        assert!(args(json!({"name": "e", "state": "gone", "endpoint": "https://a:2379"})).is_err());
    }
}
