//! Every module the engine knows, with the one schema that both parses and documents its arguments.
//!
//! Sealing ([`ModuleSpec::seal`]) reads arguments through [`contract::args::from_value`] into
//! the module's argument type at its sealed stage (fields that may hold a run-time reference
//! are [`contract::arg::Arg`]s), so any mistake is an [`ArgsError`] (a path and a kind); the
//! module's own `Validate` then checks rules across fields on what is known. Building
//! ([`SealedArgs::build`]) resolves the references into the resolved stage, checks the same
//! rules on every value, and makes the module, which never sees a reference.

use std::fmt::Debug;

use schemars::{JsonSchema, Schema, schema_for};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::builtin::apt_key::{AptKey, AptKeyArgs};
use crate::builtin::apt_repository::{AptRepository, AptRepositoryArgs};
use crate::builtin::block::{Block, BlockArgs};
use crate::builtin::certgen::{Certgen, CertgenArgs};
use crate::builtin::command::{Command, CommandArgs};
use crate::builtin::etcd_member::{EtcdMember, EtcdMemberArgs};
use crate::builtin::file::{File, FileArgs};
use crate::builtin::get_url::{GetUrl, GetUrlArgs};
use crate::builtin::group::{Group, GroupArgs};
use crate::builtin::kubeadm::{Kubeadm, KubeadmArgs};
use crate::builtin::kubectl::{Kubectl, KubectlArgs};
use crate::builtin::line::{Line, LineArgs};
use crate::builtin::modprobe::{Modprobe, ModprobeArgs};
use crate::builtin::package::{Package, PackageArgs};
use crate::builtin::replace_line::{ReplaceLine, ReplaceLineArgs};
use crate::builtin::scp::{Scp, ScpArgs};
use crate::builtin::swap::{Swap, SwapArgs};
use crate::builtin::sysctl::{Sysctl, SysctlArgs};
use crate::builtin::systemd::{Systemd, SystemdArgs};
use crate::builtin::template::{Template, TemplateArgs};
use crate::builtin::unarchive::{Unarchive, UnarchiveArgs};
use crate::builtin::user::{User, UserArgs};
use crate::builtin::wait::{Wait, WaitArgs};
use crate::validate::Validate;
use contract::arg::{NoReferences, Resolve, Resolver, Resolving};
use contract::args;
use contract::error::ArgsError;
use contract::module::{Module, SealedArgs};

/// A module as the registry knows it.
#[derive(Debug, Clone, Copy)]
pub struct ModuleSpec {
    /// The name playbooks use.
    pub name: &'static str,
    /// The task's outputs, readable by later tasks (`t.output("name")`), each with what it holds.
    pub outputs: &'static [(&'static str, &'static str)],
    /// A short playbook snippet using the module on host `h` (a second host is `peer`); the
    /// reference pages show it, and a test loads it so that it stays valid.
    pub example: &'static str,
    seal: fn(Value) -> Result<Box<dyn SealedArgs>, ArgsError>,
    schema: fn() -> Schema,
}

impl ModuleSpec {
    /// Reads arguments strictly (unknown fields, wrong types and invalid values are errors)
    /// into the module's sealed arguments, checked as far as they are known.
    pub fn seal(&self, args: Value) -> Result<Box<dyn SealedArgs>, ArgsError> {
        (self.seal)(args)
    }

    /// The module for arguments that hold no run-time reference (a reference is refused).
    pub fn parse(&self, args: Value) -> Result<Box<dyn Module>, ArgsError> {
        self.seal(args)?.build(&mut NoReferences)
    }

    /// The JSON Schema of the arguments, generated from the same type that parses them.
    pub fn schema(&self) -> Schema {
        (self.schema)()
    }

    /// The module's one-paragraph description (the doc comment of its argument type).
    pub fn summary(&self) -> String {
        self.schema().get("description").and_then(Value::as_str).unwrap_or_default().to_owned()
    }

    /// The names of the arguments the module accepts.
    pub fn argument_names(&self) -> Vec<String> {
        self.schema()
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| props.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Sealed arguments of type `A`, and how a module is made from them once resolved.
struct Typed<A: Resolve, M> {
    args: A,
    build: fn(A::Resolved) -> Result<M, ArgsError>,
}

impl<A: Resolve + Debug, M> Debug for Typed<A, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedArgs").field("args", &self.args).finish_non_exhaustive()
    }
}

impl<A, M> SealedArgs for Typed<A, M>
where
    A: Resolve + Clone + Debug + Send + Sync,
    A::Resolved: Validate,
    M: Module + 'static,
{
    fn build(&self, resolver: &mut dyn Resolver) -> Result<Box<dyn Module>, ArgsError> {
        let resolved = self.args.clone().resolve(&mut Resolving::new(resolver))?.validate()?;
        Ok(Box::new((self.build)(resolved)?))
    }
}

fn seal_with<A, M>(
    value: Value,
    build: fn(A::Resolved) -> Result<M, ArgsError>,
) -> Result<Box<dyn SealedArgs>, ArgsError>
where
    A: DeserializeOwned + Validate + Resolve + Clone + Debug + Send + Sync + 'static,
    A::Resolved: Validate,
    M: Module + 'static,
{
    let args: A = args::from_value(value)?;
    args.clone().validate()?;
    Ok(Box::new(Typed { args, build }))
}

fn schema<A: JsonSchema>() -> Schema {
    schema_for!(A)
}

/// All modules, sorted by name.
pub fn all() -> &'static [ModuleSpec] {
    const SPECS: &[ModuleSpec] = &[
        ModuleSpec {
            name: "apt",
            outputs: &[],
            example: r#"h.apt("tools", #{ names: ["curl", "tree"] });
h.apt("no telnet", #{ name: "telnet", state: "absent" });
h.apt("kubernetes tools", #{ names: ["kubeadm=1.30.4-1.1", "kubelet=1.30.4-1.1"], hold: true });
h.apt("fresh lists", #{ name: "containerd", cache_valid_time: 600 });
h.apt("no kubernetes tools", #{ names: ["kubeadm", "kubelet"], state: "absent", hold: false, purge: true, autoremove: true });"#,
            seal: |v| seal_with::<PackageArgs, _>(v, |a| Ok(Package::new(a))),
            schema: schema::<PackageArgs>,
        },
        ModuleSpec {
            name: "apt_key",
            outputs: &[],
            example: r#"h.apt_key("kubernetes key", #{
    name: "kubernetes",
    url: "https://pkgs.k8s.io/core:/stable:/v1.30/deb/Release.key",
    fingerprint: "DE15 B144 86CD 377B 9E87  6E1A 2346 54DA 9A29 6436",
});"#,
            seal: |v| seal_with::<AptKeyArgs, _>(v, |a| Ok(AptKey::new(a))),
            schema: schema::<AptKeyArgs>,
        },
        ModuleSpec {
            name: "apt_repository",
            outputs: &[],
            example: r#"h.apt_repository("kubernetes repository", #{
    name: "kubernetes",
    uris: ["https://pkgs.k8s.io/core:/stable:/v1.30/deb/"],
    suites: ["/"],
    signed_by: "/etc/apt/keyrings/kubernetes.gpg",
});"#,
            seal: |v| seal_with::<AptRepositoryArgs, _>(v, |a| Ok(AptRepository::new(a))),
            schema: schema::<AptRepositoryArgs>,
        },
        ModuleSpec {
            name: "block",
            outputs: &[("path", "the edited file")],
            example: r#"h.block("lab hosts", #{
    path: "/etc/hosts",
    name: "lab",
    block: "10.77.0.31 worker0\n10.77.0.32 worker1\n",
});
h.block("old proxy settings", #{ path: "/etc/environment", name: "proxy", state: "absent" });"#,
            seal: |v| seal_with::<BlockArgs, _>(v, |a| Ok(Block::new(a))),
            schema: schema::<BlockArgs>,
        },
        ModuleSpec {
            name: "certgen",
            outputs: &[
                ("cert", "path of the certificate on the host"),
                ("key", "path of its private key on the host"),
            ],
            example: r#"let ca = h.certgen("etcd CA", #{ kind: "ca", cn: "etcd-ca", dir: "/etc/etcd/pki", key: "rsa2048" });
h.certgen("etcd server certificate", #{
    kind: "leaf",
    profile: "server",
    dir: "/etc/etcd/pki",
    ca: #{ cert: ca.output("cert"), key: ca.output("key") },
});"#,
            seal: |v| seal_with::<CertgenArgs, _>(v, |a| Ok(Certgen::new(a))),
            schema: schema::<CertgenArgs>,
        },
        ModuleSpec {
            name: "command",
            outputs: &[("rc", "exit status"), ("stdout", "standard output"), ("stderr", "standard error")],
            example: r#"let who = h.command("who am I", #{ argv: ["hostname"], read_only: true });
h.command("unpack", #{ cmd: "tar xzf /tmp/app.tgz -C /opt", creates: "/opt/app" });
h.file("greeting", #{ path: "/tmp/greeting", content: `hello from ${who.stdout}` });"#,
            seal: |v| seal_with::<CommandArgs, _>(v, |a| Ok(Command::new(a))),
            schema: schema::<CommandArgs>,
        },
        ModuleSpec {
            name: "etcd_member",
            outputs: &[
                ("members", "the members' names as listed (an added member not started yet: \"\")"),
                ("id", "the member's ID in hex, as etcdctl prints it (\"\" when it is none)"),
            ],
            example: r#"h.etcd_member("member add etcd3", #{
    name: "etcd3",
    peer_url: "https://10.0.0.14:2380",
    endpoint: "https://10.0.0.11:2379",
});
h.etcd_member("member remove etcd3", #{
    name: "etcd3",
    state: "absent",
    endpoint: "https://10.0.0.11:2379",
    min_members: 3,
});"#,
            seal: |v| seal_with::<EtcdMemberArgs, _>(v, |a| Ok(EtcdMember::new(a))),
            schema: schema::<EtcdMemberArgs>,
        },
        ModuleSpec {
            name: "file",
            outputs: &[("path", "the managed path")],
            example: r#"h.file("app directory", #{ path: "/opt/app", state: "directory", mode: "0755" });
h.file("motd", #{ path: "/etc/motd", content: "managed by engine\n", mode: "0644", owner: "root" });
h.file("no leftovers", #{ path: "/tmp/old", state: "absent" });"#,
            seal: |v| seal_with::<FileArgs, _>(v, |a| Ok(File::new(a))),
            schema: schema::<FileArgs>,
        },
        ModuleSpec {
            name: "get_url",
            outputs: &[],
            example: r#"h.get_url("etcd release", #{
    url: "https://github.com/etcd-io/etcd/releases/download/v3.5.15/etcd-v3.5.15-linux-amd64.tar.gz",
    dest: "/tmp/etcd-v3.5.15-linux-amd64.tar.gz",
    checksum: "sha256:3f9a4ef5a0ce2e1c4b4e5b0e1f4b7a7d2a3c2b1e0f9d8c7b6a5f4e3d2c1b0a99",
});
h.get_url("kubeadm through the controller", #{
    url: "https://dl.k8s.io/release/v1.30.4/bin/linux/amd64/kubeadm",
    dest: "/usr/local/bin/kubeadm",
    checksum: "sha256:4f4a5d8f9d9b5a0c3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d",
    mode: "0755",
    via: "controller",
});"#,
            seal: |v| seal_with::<GetUrlArgs, _>(v, |a| Ok(GetUrl::new(a))),
            schema: schema::<GetUrlArgs>,
        },
        ModuleSpec {
            name: "group",
            outputs: &[],
            example: r#"h.group("etcd group", #{ name: "etcd", system: true });
h.group("no games", #{ name: "games", state: "absent" });"#,
            seal: |v| seal_with::<GroupArgs, _>(v, |a| Ok(Group::new(a))),
            schema: schema::<GroupArgs>,
        },
        ModuleSpec {
            name: "kubeadm",
            outputs: &[
                ("endpoint", "init, token_create: the API server endpoint, host:port"),
                ("token", "init, token_create: a valid bootstrap token"),
                ("ca_cert_hash", "init, token_create: sha256:<hex> of the cluster CA's public key"),
                ("join_command", "init, token_create: the full `kubeadm join` command line"),
            ],
            example: r#"let init = h.kubeadm("kubeadm init", #{
    action: "init",
    config: #{
        apiVersion: "kubeadm.k8s.io/v1alpha1",
        kind: "MasterConfiguration",
        kubernetesVersion: "v1.11.1",
        api: #{ controlPlaneEndpoint: "10.77.0.10:6443" },
    },
});
peer.kubeadm("kubeadm join", #{
    action: "join",
    endpoint: init.output("endpoint"),
    token: init.output("token"),
    ca_cert_hash: init.output("ca_cert_hash"),
});"#,
            seal: |v| seal_with::<KubeadmArgs, _>(v, Kubeadm::new),
            schema: schema::<KubeadmArgs>,
        },
        ModuleSpec {
            name: "kubectl",
            outputs: &[
                ("object", "get: the parsed JSON that kubectl returned"),
                ("names", "get without `name`: the names of the matching objects"),
                ("previous", "kube_proxy_server: the server kube-proxy used before"),
            ],
            example: r#"h.kubectl("apps namespace", #{
    action: "apply",
    manifest: to_yaml(#{ apiVersion: "v1", kind: "Namespace", metadata: #{ name: "apps" } }),
});
h.kubectl("nodes ready", #{ action: "wait", kind: "node", selector: "node-role.kubernetes.io/control-plane", timeout: 300 });
let dns = h.kubectl("dns pods", #{ action: "get", kind: "pod", namespace: "kube-system", selector: "k8s-app=kube-dns" });"#,
            seal: |v| seal_with::<KubectlArgs, _>(v, |a| Ok(Kubectl::new(a))),
            schema: schema::<KubectlArgs>,
        },
        ModuleSpec {
            name: "line",
            outputs: &[("path", "the edited file")],
            example: r#"h.line("no root login", #{
    path: "/etc/ssh/sshd_config",
    regexp: "^#?PermitRootLogin\\s",
    line: "PermitRootLogin no",
});
h.line("br_netfilter at boot", #{ path: "/etc/modules", line: "br_netfilter", create: true });
h.line("no old mirror", #{ path: "/etc/apt/sources.list", regexp: "old\\.example", state: "absent" });"#,
            seal: |v| seal_with::<LineArgs, _>(v, |a| Ok(Line::new(a))),
            schema: schema::<LineArgs>,
        },
        ModuleSpec {
            name: "modprobe",
            outputs: &[],
            example: r#"h.modprobe("overlay", #{ name: "overlay" });
h.modprobe("br_netfilter", #{ name: "br_netfilter" });
h.modprobe("no floppy", #{ name: "floppy", state: "absent" });"#,
            seal: |v| seal_with::<ModprobeArgs, _>(v, |a| Ok(Modprobe::new(a))),
            schema: schema::<ModprobeArgs>,
        },
        ModuleSpec {
            name: "replace_line",
            outputs: &[("path", "the edited file")],
            example: r#"h.replace_line("kubelet through the load balancer", #{
    path: "/etc/kubernetes/kubelet.conf",
    starts_with: "server:",
    line: "server: https://10.77.0.10:6443",
});"#,
            seal: |v| seal_with::<ReplaceLineArgs, _>(v, |a| Ok(ReplaceLine::new(a))),
            schema: schema::<ReplaceLineArgs>,
        },
        ModuleSpec {
            name: "scp",
            outputs: &[("files", "every destination path"), ("sent", "how many files were sent")],
            example: r#"let ca = peer.certgen("CA", #{ kind: "ca", cn: "my-ca", dir: "/etc/pki/my" });
h.scp("CA from peer", #{ from: peer.name, src: ca.output("cert"), dest: "/etc/pki/my/" });
h.scp("config from the controller", #{ from: "controller", src: "files/app.conf", dest: "/etc/app.conf", mode: "0640" });
h.scp("logs to the controller", #{ src: "/var/log/app", to_controller: `logs/${h.name}/` });"#,
            seal: |v| seal_with::<ScpArgs, _>(v, |a| Ok(Scp::new(a))),
            schema: schema::<ScpArgs>,
        },
        ModuleSpec {
            name: "swap",
            outputs: &[],
            example: r#"h.swap("swap off", #{});"#,
            seal: |v| seal_with::<SwapArgs, _>(v, |a| Ok(Swap::new(a))),
            schema: schema::<SwapArgs>,
        },
        ModuleSpec {
            name: "sysctl",
            outputs: &[],
            example: r#"h.sysctl("kubernetes networking", #{
    file: "k8s",
    settings: #{
        "net.bridge.bridge-nf-call-iptables": 1,
        "net.bridge.bridge-nf-call-ip6tables": 1,
        "net.ipv4.ip_forward": 1,
    },
});"#,
            seal: |v| seal_with::<SysctlArgs, _>(v, |a| Ok(Sysctl::new(a))),
            schema: schema::<SysctlArgs>,
        },
        ModuleSpec {
            name: "systemd",
            outputs: &[
                ("active_state", "the unit's ActiveState after the task, e.g. active"),
                ("sub_state", "its SubState, e.g. running"),
            ],
            example: r#"h.systemd("app service", #{
    name: "app",
    unit: "[Unit]\nDescription=app\n\n[Service]\nExecStart=/opt/app/run\n\n[Install]\nWantedBy=multi-user.target\n",
    enabled: true,
    state: "started",
});
let restart = h.handler("systemd", "restart app", #{ name: "app", state: "restarted" });"#,
            seal: |v| seal_with::<SystemdArgs, _>(v, |a| Ok(Systemd::new(a))),
            schema: schema::<SystemdArgs>,
        },
        ModuleSpec {
            name: "template",
            outputs: &[("path", "the rendered file")],
            example: r#"h.template("app config", #{
    path: "/etc/app.conf",
    template: "listen {{ address }}:{{ port }}\nname {{ facts.hostname }}\n",
    vars: #{ address: h.address, port: 8080 },
    mode: "0640",
});"#,
            seal: |v| seal_with::<TemplateArgs, _>(v, |a| Ok(Template::new(a))),
            schema: schema::<TemplateArgs>,
        },
        ModuleSpec {
            name: "unarchive",
            outputs: &[],
            example: r#"h.unarchive("etcd release", #{
    src: "/tmp/etcd-v3.5.15-linux-amd64.tar.gz",
    dest: "/usr/local/bin",
    strip_components: 1,
    include: ["etcd-v3.5.15-linux-amd64/etcd", "etcd-v3.5.15-linux-amd64/etcdctl"],
});
h.unarchive("web assets", #{ src: "files/assets.zip", from_controller: true, dest: "/srv/www" });"#,
            seal: |v| seal_with::<UnarchiveArgs, _>(v, |a| Ok(Unarchive::new(a))),
            schema: schema::<UnarchiveArgs>,
        },
        ModuleSpec {
            name: "user",
            outputs: &[],
            example: r#"let etcd = h.group("etcd group", #{ name: "etcd", system: true });
h.user("etcd user", #{ name: "etcd", group: "etcd", system: true, shell: "/usr/sbin/nologin", home: "/var/lib/etcd", create_home: false })
    .after(etcd);
h.user("ops", #{ name: "ops", groups: ["sudo"], shell: "/bin/bash" });
h.user("deploy", #{ name: "deploy", password: secret(param("deploy_hash", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7")), update_password: "on_create" });
h.user("no guest", #{ name: "guest", state: "absent", remove: true });"#,
            seal: |v| seal_with::<UserArgs, _>(v, |a| Ok(User::new(a))),
            schema: schema::<UserArgs>,
        },
        ModuleSpec {
            name: "wait",
            outputs: &[
                ("attempts", "how many probes ran"),
                ("elapsed_ms", "milliseconds until the condition held"),
            ],
            example: r#"h.wait("ssh is up", #{ port: 22, timeout: 30 });
h.wait("app healthy", #{ url: "http://127.0.0.1:8080/health", status: 200, interval: 2 });
h.wait("etcd member", #{ command: "etcdctl endpoint health", timeout: 120 });"#,
            seal: |v| seal_with::<WaitArgs, _>(v, |a| Ok(Wait::new(a))),
            schema: schema::<WaitArgs>,
        },
    ];
    SPECS
}

/// Finds a module by name.
pub fn find(name: &str) -> Option<&'static ModuleSpec> {
    all().iter().find(|spec| spec.name == name)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn error(module: &str, args: Value) -> String {
        match find(module).unwrap().parse(args) {
            Ok(_) => panic!("{module}: arguments accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn argument_errors_name_the_argument_and_suggest() {
        assert_eq!(
            error("file", json!({ "path": "/x", "contnet": "" })),
            "unknown argument `contnet`; did you mean `content`?"
        );
        assert_eq!(
            error("file", json!({ "path": "/x", "mode": 644 })),
            "argument `mode` must be an octal mode string like \"0644\", got the integer 644"
        );
        assert_eq!(
            error("file", json!({ "path": 42 })),
            "argument `path` must be a string, got the integer 42"
        );
        assert_eq!(
            error("file", json!({ "path": "/x", "state": "dir" })),
            "argument `state` must be one of \"file\", \"directory\", \"absent\", got \"dir\"; did you mean `directory`?"
        );
        assert_eq!(error("file", json!({ "content": "" })), "missing required argument `path`");
        assert_eq!(
            error("apt", json!({ "names": "hello" })),
            "argument `names` must be a list (an array), got the string \"hello\""
        );
    }

    #[test]
    fn errors_carry_the_path_of_the_argument() {
        let path = |module: &str, args: Value| match find(module).unwrap().parse(args) {
            Ok(_) => panic!("{module}: arguments accepted"),
            Err(e) => e.path,
        };
        assert_eq!(path("file", json!({ "path": "rel" })), "path");
        assert_eq!(path("file", json!({ "path": "/x", "mode": "0999" })), "mode");
        assert_eq!(path("scp", json!({ "src": ["/a", 1], "dest": "/x", "from": "controller" })), "src[1]");
        assert_eq!(
            path("certgen", json!({ "kind": "leaf", "dir": "/x", "ca": { "crt": "/a", "key": "/b" } })),
            "ca.crt"
        );
        assert_eq!(path("command", json!({ "cmd": "x", "env": { "1A": "b" } })), "env");
        assert_eq!(path("apt", json!({ "names": ["tree", "Bad"] })), "names[1]");
        assert_eq!(path("command", json!({ "cmd": "x", "argv": ["y"] })), "");
        let config =
            json!({ "apiVersion": "kubeadm.k8s.io/v1alpha1", "kind": "MasterConfiguration", "apii": {} });
        assert_eq!(path("kubeadm", json!({ "action": "init", "config": config })), "config.apii");
    }

    #[test]
    fn nested_errors_name_the_path() {
        let message = error("scp", json!({ "src": 1, "dest": "/x", "from": "controller" }));
        assert!(message.starts_with("argument `src` must be a path or a list of paths"), "{message}");
        let message =
            error("certgen", json!({ "kind": "leaf", "dir": "/x", "ca": { "crt": "/a", "key": "/b" } }));
        assert!(message.starts_with("unknown key `crt` in argument `ca`; did you mean `cert`?"), "{message}");
    }
}

#[cfg(test)]
mod outputs_tests {
    use super::*;

    /// The outputs table and the module's own description (its doc comment) name the same
    /// outputs, so neither drifts alone.
    #[test]
    fn declared_outputs_are_named_in_the_summary() {
        for spec in all() {
            let summary = spec.summary();
            for (output, _) in spec.outputs {
                assert!(
                    summary.contains(&format!("`{output}`")),
                    "{}: summary lacks output `{output}`",
                    spec.name
                );
            }
            let mentions_outputs = summary.to_lowercase().contains("output");
            assert_eq!(mentions_outputs, !spec.outputs.is_empty(), "{}: outputs table vs summary", spec.name);
        }
    }
}
