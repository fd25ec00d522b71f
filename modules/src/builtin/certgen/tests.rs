//! Unit tests: certificates made in-process, decisions on them, and the module end to end
//! against a local `sh` standing in for a host.

use std::sync::Arc;

use serde_json::json;

use super::inspect::{self, Wanted};
use super::issue::{self, Authority, CertSpec, Issued};
use super::spec::{KeyAlgo, KeyKind, Profile, San, Subject, Usages};
use super::*;
use contract::local::LocalHost;
use contract::module::{Peers, PlanOptions};

const DAY: i64 = 86_400;

fn spec(cn: &str, sans: &[&str], profile: Profile, key: KeyAlgo, expiry_days: u64) -> CertSpec {
    CertSpec {
        subject: Subject::new(cn, &[]).unwrap(),
        sans: sans.iter().map(|s| San::parse(s).unwrap()).collect(),
        usages: Usages::from_names(profile.usages()),
        key,
        expiry: Duration::from_secs(expiry_days * DAY as u64),
    }
}

fn make_ca(cn: &str, key: KeyAlgo) -> Issued {
    let spec = CertSpec {
        subject: Subject::new(cn, &[]).unwrap(),
        sans: Vec::new(),
        usages: Usages::ca(),
        key,
        expiry: Duration::from_secs(1825 * DAY as u64),
    };
    issue::ca(&spec, now()).unwrap()
}

fn authority(ca: &Issued) -> Authority {
    Authority::new(ca.cert_pem.as_bytes(), ca.key_pem.0.clone().into_bytes(), "test").unwrap()
}

fn wanted(cn: &str, sans: &[&str], profile: Profile, key: KeyAlgo) -> Wanted {
    Wanted {
        subject: Subject::new(cn, &[]).unwrap(),
        sans: sans.iter().map(|s| San::parse(s).unwrap()).collect(),
        usages: Usages::from_names(profile.usages()),
        key: key.kind(),
        renew_before_secs: 30 * DAY,
    }
}

#[test]
fn every_key_algorithm_generates_and_reads_back() {
    for (algo, kind) in [
        (KeyAlgo::Rsa2048, KeyKind::Rsa(2048)),
        (KeyAlgo::EcdsaP256, KeyKind::Ec(256)),
        (KeyAlgo::EcdsaP384, KeyKind::Ec(384)),
        (KeyAlgo::Ed25519, KeyKind::Ed25519),
    ] {
        let ca = make_ca("etcd", algo);
        let info = inspect::parse_pem(ca.cert_pem.as_bytes()).unwrap();
        assert_eq!(info.key, kind);
        assert!(info.is_ca);
        assert_eq!(info.key_bits, Usages::ca().key_bits);
        assert!(info.subject_key_id.is_some());
        assert!(inspect::signed_by(&info, &info), "self-signed");
        let leaf = issue::leaf(&spec("etcd0", &["etcd0"], Profile::Peer, algo, 365), &authority(&ca), now())
            .unwrap();
        let leaf = inspect::parse_pem(leaf.cert_pem.as_bytes()).unwrap();
        assert_eq!(leaf.key, kind);
        assert_eq!(leaf.authority_key_id, info.subject_key_id, "AKI is the CA's SKI");
        assert!(inspect::signed_by(&leaf, &info));
    }
}

#[test]
fn validity_starts_five_minutes_back_and_lasts_exactly_the_expiry() {
    let ca = make_ca("etcd", KeyAlgo::EcdsaP256);
    let issued =
        issue::leaf(&spec("c", &[], Profile::Client, KeyAlgo::EcdsaP256, 10), &authority(&ca), 1_000_000_000)
            .unwrap();
    let info = inspect::parse_pem(issued.cert_pem.as_bytes()).unwrap();
    assert_eq!(info.not_before, 1_000_000_020 - 300, "rounded to the minute, minus 5 minutes");
    assert_eq!(info.not_after - info.not_before, 10 * DAY);
}

#[test]
fn a_fitting_certificate_is_kept_and_each_misfit_is_named() {
    let ca = make_ca("etcd", KeyAlgo::Rsa2048);
    let other_ca = make_ca("etcd", KeyAlgo::Rsa2048);
    let ca_info = authority(&ca).cert;
    let sans = ["etcd0", "10.77.0.11"];
    let leaf =
        issue::leaf(&spec("etcd0", &sans, Profile::Peer, KeyAlgo::EcdsaP256, 365), &authority(&ca), now())
            .unwrap();
    let cert = leaf.cert_pem.as_bytes();
    let key = Some(leaf.key_pem.0.as_bytes());
    let want = wanted("etcd0", &sans, Profile::Peer, KeyAlgo::EcdsaP256);
    assert_eq!(inspect::reissue_reasons(&want, cert, key, &ca_info, now()), Vec::<String>::new());

    let reasons = |w: &Wanted, ca: &inspect::CertInfo, key: Option<&[u8]>| {
        inspect::reissue_reasons(w, cert, key, ca, now())
    };
    let more_sans =
        wanted("etcd0", &["etcd0", "10.77.0.11", "10.77.0.12"], Profile::Peer, KeyAlgo::EcdsaP256);
    assert_eq!(reasons(&more_sans, &ca_info, key), ["SAN 10.77.0.12 missing"]);
    let fewer_sans = wanted("etcd0", &["etcd0"], Profile::Peer, KeyAlgo::EcdsaP256);
    assert_eq!(reasons(&fewer_sans, &ca_info, key), ["SAN 10.77.0.11 not wanted"]);
    assert_eq!(reasons(&want, &authority(&other_ca).cert, key), ["signed by a different CA"]);
    let rsa = wanted("etcd0", &sans, Profile::Peer, KeyAlgo::Rsa2048);
    assert_eq!(reasons(&rsa, &ca_info, key), ["key algorithm differs (ecdsa-p256, wanted rsa2048)"]);
    let client = wanted("etcd0", &sans, Profile::Client, KeyAlgo::EcdsaP256);
    assert_eq!(
        reasons(&client, &ca_info, key),
        ["extended key usages are server auth, client auth, wanted client auth"]
    );
    let renamed = wanted("etcd9", &sans, Profile::Peer, KeyAlgo::EcdsaP256);
    assert_eq!(reasons(&renamed, &ca_info, key), ["subject is CN=etcd0, wanted CN=etcd9"]);
    assert_eq!(reasons(&want, &ca_info, None), ["the key file is missing"]);
    let stranger = make_ca("x", KeyAlgo::EcdsaP256);
    assert_eq!(
        reasons(&want, &ca_info, Some(stranger.key_pem.0.as_bytes())),
        ["the key file does not match the certificate"]
    );
    assert_eq!(
        reasons(&want, &ca_info, Some(b"garbage")),
        ["the key file cannot be parsed as a private key"]
    );
    assert_eq!(inspect::reissue_reasons(&want, b"junk", key, &ca_info, now()).len(), 1);
}

#[test]
fn a_certificate_near_its_end_is_renewed() {
    let ca = make_ca("etcd", KeyAlgo::EcdsaP256);
    let ca_info = authority(&ca).cert;
    let leaf = issue::leaf(&spec("c", &[], Profile::Client, KeyAlgo::EcdsaP256, 13), &authority(&ca), now())
        .unwrap();
    let want = wanted("c", &[], Profile::Client, KeyAlgo::EcdsaP256);
    let reasons = inspect::reissue_reasons(
        &want,
        leaf.cert_pem.as_bytes(),
        Some(leaf.key_pem.0.as_bytes()),
        &ca_info,
        now(),
    );
    assert_eq!(reasons, ["expires in 12 days"]);
    let later = now() + 20 * DAY;
    let reasons = inspect::reissue_reasons(
        &want,
        leaf.cert_pem.as_bytes(),
        Some(leaf.key_pem.0.as_bytes()),
        &ca_info,
        later,
    );
    assert!(reasons.iter().any(|r| r.starts_with("expired 7 days ago")), "{reasons:?}");
    let relaxed = Wanted { renew_before_secs: 5 * DAY, ..want };
    let reasons = inspect::reissue_reasons(
        &relaxed,
        leaf.cert_pem.as_bytes(),
        Some(leaf.key_pem.0.as_bytes()),
        &ca_info,
        now(),
    );
    assert!(reasons.is_empty(), "{reasons:?}");
}

#[test]
fn arguments_are_checked_strictly() {
    let parse = |v: serde_json::Value| {
        contract::args::from_value::<CertgenArgs>(v)
            .and_then(crate::validate::Validate::validate)
            .map_err(|e| e.to_string())
    };
    let ca = json!({ "host": "etcd0", "cert": "/p/ca.pem", "key": "/p/ca-key.pem" });
    assert!(parse(json!({ "kind": "ca", "cn": "etcd", "dir": "/p", "key": "rsa2048" })).is_ok());
    assert!(parse(json!({ "kind": "leaf", "profile": "server", "dir": "/p", "ca": ca })).is_ok());
    assert!(
        parse(json!({ "kind": "leaf", "profile": "server", "dir": "/p", "ca": { "controller": "pki" } }))
            .is_ok()
    );
    let err = |v| parse(v).unwrap_err();
    assert!(err(json!({ "kind": "ca", "dir": "/p" })).contains("needs a cn"));
    assert!(err(json!({ "kind": "ca", "cn": "x", "dir": "p" })).contains("absolute"));
    assert!(
        err(json!({ "kind": "ca", "cn": "x", "dir": "/p", "profile": "server" })).contains("only for kind")
    );
    assert!(
        err(json!({ "kind": "ca", "cn": "x", "dir": "/p", "key": "rsa1024" })).contains("must be one of")
    );
    assert!(err(json!({ "kind": "ca", "cn": "x", "dir": "/p", "expiry": "5y" })).contains("expiry"));
    assert!(
        err(json!({ "kind": "ca", "cn": "x", "dir": "/p", "cn2": "y" })).contains("unknown argument `cn2`")
    );
    assert!(err(json!({ "kind": "leaf", "dir": "/p", "ca": ca })).contains("profile"));
    assert!(err(json!({ "kind": "leaf", "profile": "peer", "dir": "/p" })).contains("needs ca"));
    assert!(
        err(json!({ "kind": "leaf", "profile": "peer", "dir": "/p", "ca": { "host": "e" } }))
            .contains("cert and key")
    );
    assert!(
        err(json!({ "kind": "leaf", "profile": "peer", "dir": "/p", "ca": ca, "hosts": ["a b"] }))
            .contains("hosts")
    );
    assert!(
        err(json!({ "kind": "leaf", "profile": "peer", "dir": "/p", "ca": { "controller": "d", "host": "e" } }))
            .contains("either host or controller")
    );
    // A reference to another task's output is checked once it is resolved.
    let marker = format!("{}output|3|cert{}", contract::deferred::open(), contract::deferred::CLOSE);
    let by_ref =
        json!({ "kind": "leaf", "profile": "peer", "dir": "/p", "ca": { "cert": marker, "key": marker } });
    assert!(parse(by_ref).is_ok());
}

#[test]
fn default_sans_are_the_hostname_and_non_loopback_ipv4() {
    let facts = Facts::new(
        "etcd0",
        json!({
            "hostname": "etcd0",
            "interfaces": {
                "lo": { "ipv4": ["127.0.0.1"] },
                "host0": { "ipv4": ["10.77.0.11"], "ipv6": ["fe80::1"] },
            },
        }),
    );
    let sans = default_sans(&facts, &|_| false).unwrap();
    assert_eq!(sans, [San::Dns("etcd0".into()), San::Ip("10.77.0.11".parse().unwrap())]);
}

/// Facts a host reports are not trusted for certificate names: a hostname that did not parse
/// (a wildcard), an address that did not parse, or the name of another host of the run is
/// refused, naming the host.
#[test]
fn default_names_refuse_forged_facts_and_peers_names() {
    let gathered = |hostname: &str, address: &str| {
        let output = format!(
            "@@hostname\n{hostname}\n@@addr\n[{{\"ifname\":\"host0\",\"addr_info\":[{{\"family\":\"inet\",\"local\":{}}}]}}]\n",
            serde_json::to_string(address).unwrap()
        );
        contract::facts::parse("etcd0", &output)
    };
    let none = |_: &str| false;
    assert!(default_sans(&gathered("etcd0", "10.77.0.11"), &none).is_ok());
    let error = default_sans(&gathered("*.cluster.local", "10.77.0.11"), &none).unwrap_err().to_string();
    assert_eq!(
        error,
        r#"fact "hostname" of etcd0 is not a host name (RFC 1123): the host reported "*.cluster.local""#
    );
    let error = default_sans(&gathered("etcd0", "10.77.0.11,10.77.0.12"), &none).unwrap_err().to_string();
    assert!(
        error.starts_with(r#"fact "interfaces.host0.ipv4.0" of etcd0 is not an IPv4 address"#),
        "{error}"
    );
    let peer = |name: &str| name == "etcd1";
    let error = default_sans(&gathered("etcd1", "10.77.0.11"), &peer).unwrap_err().to_string();
    assert_eq!(
        error,
        "etcd0 reports its hostname as \"etcd1\", the name of another host of this run: refused as a \
         certificate name (give `cn` and `hosts` to name it yourself)"
    );
}

struct OnePeer(Arc<dyn Host>);

impl Peers for OnePeer {
    fn peer(&self, name: &str) -> Option<Arc<dyn Host>> {
        (name == self.0.name()).then(|| self.0.clone())
    }
}

async fn plan(args: serde_json::Value, host: &dyn Host, peers: &dyn Peers) -> Result<Plan, ModuleError> {
    let module = crate::registry::find("certgen")
        .unwrap()
        .parse(args)
        .map_err(|e| ModuleError::Refused(e.to_string()))?;
    let facts = Facts::new(
        "etcd0",
        json!({ "hostname": "etcd0", "interfaces": { "host0": { "ipv4": ["10.77.0.11"] } } }),
    );
    let cx = Context {
        host,
        options: PlanOptions { diff: true, ..PlanOptions::default() },
        facts: Some(&facts),
        peers,
    };
    module.plan(&cx).await
}

async fn apply(plan: Plan, host: &dyn Host) {
    plan.action.expect("a change").apply(host).await.unwrap();
}

#[tokio::test]
async fn the_module_creates_keeps_and_reissues_without_leaking_keys() {
    let tmp = std::env::temp_dir().join(format!("certgen-unit-{}", std::process::id()));
    let dir = tmp.join("pki").display().to_string();
    let host = LocalHost::new("etcd0");
    let ca_args = json!({ "kind": "ca", "cn": "etcd", "key": "rsa2048", "dir": dir });
    let first = plan(ca_args.clone(), &host, &contract::NoPeers).await.unwrap();
    assert_eq!(first.changes.len(), 2, "{:?}", first.changes);
    assert_eq!(first.outputs["cert"], json!(format!("{dir}/ca.pem")));
    apply(first, &host).await;
    let again = plan(ca_args, &host, &contract::NoPeers).await.unwrap();
    assert!(!again.is_change(), "{:?}", again.changes);

    // Never replaced: another key algorithm or subject is an error.
    let err = plan(
        json!({ "kind": "ca", "cn": "etcd", "key": "ecdsa-p256", "dir": dir }),
        &host,
        &contract::NoPeers,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("its key is rsa2048, this task asks for ecdsa-p256"), "{err}");
    assert!(err.contains("never replaces a CA"), "{err}");

    // A leaf signed by the CA read from the "peer" (the same local machine, by another name).
    let peer: Arc<dyn Host> = Arc::new(LocalHost::new("etcd-ca"));
    let peers = OnePeer(peer);
    let leaf = json!({
        "kind": "leaf", "profile": "peer", "dir": dir,
        "ca": { "host": "etcd-ca", "cert": format!("{dir}/ca.pem"), "key": format!("{dir}/ca-key.pem") },
    });
    let first = plan(leaf.clone(), &host, &peers).await.unwrap();
    assert!(
        first.changes[0].contains("CN=etcd0, SANs [etcd0, 10.77.0.11], peer profile"),
        "{:?}",
        first.changes
    );
    apply(first, &host).await;
    let mode = std::fs::metadata(format!("{dir}/peer-key.pem")).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600);
    assert!(!plan(leaf.clone(), &host, &peers).await.unwrap().is_change());

    // The controller-signed mode's CA copy: written once, then left alone; the cert is kept.
    let mut with_copy = leaf.clone();
    with_copy["write_ca_cert"] = json!(format!("{dir}/copy/ca.pem"));
    std::fs::create_dir_all(format!("{dir}/copy")).unwrap();
    let copy = plan(with_copy.clone(), &host, &peers).await.unwrap();
    assert_eq!(copy.changes, [format!("write CA certificate copy {dir}/copy/ca.pem")]);
    apply(copy, &host).await;
    assert_eq!(
        std::fs::read(format!("{dir}/copy/ca.pem")).unwrap(),
        std::fs::read(format!("{dir}/ca.pem")).unwrap()
    );
    assert!(!plan(with_copy, &host, &peers).await.unwrap().is_change());

    // A changed SAN list reissues, and says why, without key material anywhere.
    let mut more = leaf.clone();
    more["hosts"] = json!(["etcd0", "10.77.0.11", "10.77.0.99"]);
    let reissue = plan(more, &host, &peers).await.unwrap();
    let text = format!("{:?} {:?} {:?}", reissue.changes, reissue.diff, reissue.action);
    assert!(text.contains("SAN 10.77.0.99 missing"), "{text}");
    assert_eq!(reissue.diff.as_deref(), Some("certificate would be reissued: SAN 10.77.0.99 missing\n"));
    let key = std::fs::read_to_string(format!("{dir}/ca-key.pem")).unwrap();
    let body = key.lines().nth(1).unwrap();
    assert!(!text.contains(body) && !text.contains("PRIVATE KEY"), "{text}");

    // The same CA read from the controller (this machine's files, through a local `sh`).
    let on_controller = json!({
        "kind": "leaf", "profile": "client", "cn": "admin", "name": "admin", "dir": dir,
        "ca": { "controller": dir },
    });
    let first = plan(on_controller.clone(), &host, &contract::NoPeers).await.unwrap();
    apply(first, &host).await;
    assert!(!plan(on_controller.clone(), &host, &contract::NoPeers).await.unwrap().is_change());
    let mut missing = on_controller;
    missing["ca"]["key"] = json!("nope-key.pem");
    let err = plan(missing, &host, &contract::NoPeers).await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "cannot read CA file {dir}/nope-key.pem on the controller: cat: {dir}/nope-key.pem: No such file or directory"
        )
    );

    // A missing CA names the fix.
    let mut orphan = leaf;
    orphan["ca"]["cert"] = json!(format!("{dir}/nope.pem"));
    let err = plan(orphan, &host, &peers).await.unwrap_err().to_string();
    assert!(err.contains("not found on etcd-ca") && err.contains("ca_task.output"), "{err}");
    std::fs::remove_dir_all(tmp).unwrap();
}
