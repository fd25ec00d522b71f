//! kubeadm's version skew policies for `kubeadm upgrade` (its `EnforceVersionPolicies`), with
//! its messages, and the kubelet's place in the skew policy.

use crate::cluster::parse_version;

/// What kubeadm finds wrong with an upgrade to a version: `mandatory` errors stop it whatever
/// the flags; `skippable` ones only `--force` would pass (the stand-in does not take `--force`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub mandatory: Vec<String>,
    pub skippable: Vec<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.mandatory.is_empty() && self.skippable.is_empty()
    }

    /// kubeadm's text for a refused version (`[upgrade/version] FATAL: ...`).
    pub fn text(&self) -> String {
        let list = |errors: &[String]| errors.iter().map(|e| format!("\t- {e}\n")).collect::<String>();
        if !self.mandatory.is_empty() {
            format!(
                "[upgrade/version] FATAL: the --version argument is invalid due to these fatal errors:\n\n{}\n\
                 Please fix the misalignments highlighted above and try upgrading again",
                list(&self.mandatory)
            )
        } else {
            format!(
                "[upgrade/version] FATAL: the --version argument is invalid due to these errors:\n\n{}\n\
                 Can be bypassed if you pass the --force flag",
                list(&self.skippable)
            )
        }
    }
}

/// The checks of kubeadm's `EnforceVersionPolicies` for an upgrade of a cluster at `cluster`
/// to `target` by a kubeadm of version `kubeadm`, with the cluster's kubelets at `kubelets`
/// (every version is `vMAJOR.MINOR.PATCH`; the stand-ins know no pre-releases).
pub fn policies(cluster: &str, kubeadm: &str, target: &str, kubelets: &[String]) -> Verdict {
    let mut v = Verdict::default();
    let (Some(c), Some(k), Some(t)) = (parse_version(cluster), parse_version(kubeadm), parse_version(target))
    else {
        v.mandatory.push(format!(
            "Unable to parse the versions (cluster {cluster}, kubeadm {kubeadm}, target {target})"
        ));
        return v;
    };
    // kubeadm's MinimumControlPlaneVersion: one minor below its own, patch 0.
    let minimum = (k.0, k.1.saturating_sub(1), 0);
    if minimum >= t {
        v.mandatory.push(format!(
            "Specified version to upgrade to \"{target}\" is equal to or lower than the minimum supported version \"{cluster}\". Please specify a higher version to upgrade to"
        ));
    }
    if t.1 > c.1 + 1 {
        v.mandatory.push(format!(
            "Specified version to upgrade to \"{target}\" is too high; kubeadm can upgrade only 1 minor version at a time"
        ));
    }
    if t.1 + 1 < c.1 {
        v.mandatory.push(format!(
            "Specified version to downgrade to \"{target}\" is too low; kubeadm can downgrade only 1 minor version at a time"
        ));
    }
    if k < t {
        if t.1 > k.1 {
            v.mandatory.push(format!(
                "Specified version to upgrade to \"{target}\" is at least one minor release higher than the kubeadm minor release ({} > {}). Such an upgrade is not supported",
                t.1, k.1
            ));
        } else {
            v.skippable.push(format!(
                "Specified version to upgrade to \"{target}\" is higher than the kubeadm version \"{kubeadm}\". Upgrade kubeadm first using the tool you used to install kubeadm"
            ));
        }
    }
    if k.0 > t.0 || k.1 > t.1 {
        v.skippable.push(format!(
            "Kubeadm version {kubeadm} can only be used to upgrade to Kubernetes version {}.{}",
            k.0, k.1
        ));
    }
    let mut too_old: Vec<&str> = kubelets
        .iter()
        .filter(|kv| parse_version(kv).is_some_and(|kv| t.1 > kv.1 + 1))
        .map(String::as_str)
        .collect();
    too_old.sort_unstable();
    too_old.dedup();
    if !too_old.is_empty() {
        v.skippable.push(format!(
            "There are kubelets in this cluster that are too old that have these versions [{}]",
            too_old.join(" ")
        ));
    }
    v
}

/// kubeadm's preflight check `KubeletVersion` (init and join): a kubelet of a newer minor than
/// the control plane is a fatal error, with kubeadm's text.
pub fn kubelet_preflight(kubelet: &str, control_plane: &str) -> Option<String> {
    let (k, c) = (parse_version(kubelet)?, parse_version(control_plane)?);
    (k.0 > c.0 || k.1 > c.1).then(|| {
        format!(
            "[ERROR KubeletVersion]: the kubelet version is higher than the control plane version. This is not a supported version skew and may lead to a malfunctional cluster. Kubelet version: \"{}\" Control plane version: \"{}\"",
            &kubelet[1..],
            &control_plane[1..]
        )
    })
}

/// Why a kubelet of version `kubelet` may not register with a control plane at `control_plane`
/// (the skew policy: never newer than kube-apiserver, at most three minors older), or `None`.
pub fn kubelet_refusal(kubelet: &str, control_plane: &str) -> Option<String> {
    let (Some(k), Some(c)) = (parse_version(kubelet), parse_version(control_plane)) else {
        return Some(format!(
            "cannot compare kubelet version {kubelet} with the control plane's {control_plane}"
        ));
    };
    if (k.0, k.1) > (c.0, c.1) {
        return Some(format!(
            "kubelet {kubelet} is newer than the control plane ({control_plane}): the version skew policy \
             does not allow a kubelet newer than kube-apiserver"
        ));
    }
    if k.0 == c.0 && k.1 + 3 < c.1 {
        return Some(format!(
            "kubelet {kubelet} is more than three minor versions older than the control plane ({control_plane})"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubelets(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn one_minor_at_a_time_with_a_kubeadm_as_new_as_the_target() {
        assert!(policies("v1.30.4", "v1.31.1", "v1.31.1", &kubelets(&["v1.30.4"])).ok());
        // The same version again (a second apply) is allowed.
        assert!(policies("v1.31.1", "v1.31.1", "v1.31.1", &kubelets(&["v1.31.1"])).ok());
        let skip = policies("v1.30.4", "v1.32.0", "v1.32.0", &[]);
        assert_eq!(
            skip.mandatory,
            [
                "Specified version to upgrade to \"v1.32.0\" is too high; kubeadm can upgrade only 1 minor version at a time"
            ]
        );
        assert!(skip.text().contains("these fatal errors:\n\n\t- Specified version"), "{}", skip.text());
        let old_kubeadm = policies("v1.30.4", "v1.30.4", "v1.31.1", &[]);
        assert!(
            old_kubeadm.mandatory[0]
                .contains("at least one minor release higher than the kubeadm minor release (31 > 30)")
        );
        let patch = policies("v1.30.3", "v1.30.3", "v1.30.4", &[]);
        assert!(patch.mandatory.is_empty());
        assert_eq!(
            patch.skippable,
            [
                "Specified version to upgrade to \"v1.30.4\" is higher than the kubeadm version \"v1.30.3\". Upgrade kubeadm first using the tool you used to install kubeadm"
            ]
        );
        assert!(patch.text().ends_with("Can be bypassed if you pass the --force flag"));
        let older = policies("v1.31.1", "v1.31.1", "v1.29.0", &[]);
        assert!(
            older
                .mandatory
                .iter()
                .any(|e| e.contains("is equal to or lower than the minimum supported version"))
        );
        assert!(older.mandatory.iter().any(|e| e.contains("is too low; kubeadm can downgrade only 1 minor")));
        let stale = policies("v1.31.1", "v1.32.0", "v1.32.0", &kubelets(&["v1.30.4", "v1.31.1", "v1.30.4"]));
        assert_eq!(
            stale.skippable,
            ["There are kubelets in this cluster that are too old that have these versions [v1.30.4]"]
        );
    }

    #[test]
    fn a_kubelet_never_newer_than_the_control_plane() {
        assert_eq!(
            kubelet_preflight("v1.31.1", "v1.30.4").unwrap(),
            "[ERROR KubeletVersion]: the kubelet version is higher than the control plane version. This is not a supported version skew and may lead to a malfunctional cluster. Kubelet version: \"1.31.1\" Control plane version: \"1.30.4\""
        );
        assert_eq!(kubelet_preflight("v1.30.4", "v1.31.1"), None);
        assert_eq!(kubelet_refusal("v1.30.4", "v1.31.1"), None);
        assert_eq!(kubelet_refusal("v1.31.1", "v1.31.0"), None, "the policy speaks of minor versions");
        assert!(kubelet_refusal("v1.31.1", "v1.30.4").unwrap().contains("newer than the control plane"));
        assert!(kubelet_refusal("v1.26.0", "v1.30.4").is_some());
        assert_eq!(kubelet_refusal("v1.27.0", "v1.30.4"), None);
    }
}
