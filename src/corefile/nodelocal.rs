//! NodeLocal DNSCache Corefiles carry `__PILLAR__…__` placeholders. The installer replaces
//! some with `sed`; node-cache (k8s-dns `cmd/node-cache`) replaces the rest when it starts:
//! `__PILLAR__LOCAL__DNS__` by its `-localip` list, `__PILLAR__CLUSTER__DNS__` by the cluster IP
//! of the `-upstreamsvc` Service (from `$<NAME>_SERVICE_HOST`), `__PILLAR__UPSTREAM__SERVERS__`
//! by `/etc/resolv.conf`, and a leftover `__PILLAR__DNS__SERVER__` by nothing. clusterdns takes
//! the same flags, and `--dns-domain` for `__PILLAR__DNS__DOMAIN__`.

use std::collections::HashMap;
use std::net::IpAddr;

use super::grammar::{Pillar, Vars};

/// The values of the NodeLocal DNSCache placeholders (flags shared by every command).
#[derive(Debug, Clone, clap::Args)]
pub struct NodeLocal {
    /// Node-local Corefiles: the address(es) for __PILLAR__LOCAL__DNS__, comma-separated
    /// (node-cache's -localip).
    #[arg(long, global = true, value_name = "IP[,IP]")]
    pub localip: Option<String>,
    /// Node-local Corefiles: the Service whose cluster IP is __PILLAR__CLUSTER__DNS__, read
    /// from $<NAME>_SERVICE_HOST as node-cache does.
    #[arg(long, global = true, value_name = "NAME", default_value = "kube-dns")]
    pub upstreamsvc: String,
    /// Node-local Corefiles: __PILLAR__DNS__SERVER__ (left empty by default, as node-cache does).
    #[arg(long, global = true, value_name = "IP")]
    pub dns_server: Option<String>,
    /// Node-local Corefiles: __PILLAR__DNS__DOMAIN__.
    #[arg(
        long,
        global = true,
        value_name = "DOMAIN",
        default_value = "cluster.local"
    )]
    pub dns_domain: String,
}

impl NodeLocal {
    /// The substitutions a Corefile gets in this process: its environment and the placeholders.
    pub fn vars(&self) -> Result<Vars, String> {
        // vars() would panic on a variable that is not UTF-8; such a one is left out.
        let env: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let pillars = self.pillars(&env)?;
        Ok(Vars { env, pillars })
    }

    fn pillars(&self, env: &HashMap<String, String>) -> Result<Vec<Pillar>, String> {
        let local = match &self.localip {
            Some(list) => {
                let ips: Vec<&str> = list.split(',').map(str::trim).collect();
                if let Some(bad) = ips.iter().find(|ip| ip.parse::<IpAddr>().is_err()) {
                    return Err(format!("--localip: {bad:?} is not an IP address"));
                }
                Ok(ips.join(" "))
            }
            None => Err(
                "--localip (node-cache's -localip: the node-local address or addresses)".to_owned(),
            ),
        };
        let var = format!(
            "{}_SERVICE_HOST",
            self.upstreamsvc.to_ascii_uppercase().replace('-', "_")
        );
        let cluster = env.get(&var).filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
            format!(
                "${var}, the cluster IP of the Service named by --upstreamsvc ({}), which Kubernetes sets in the pods of its namespace",
                self.upstreamsvc
            )
        });
        Ok(vec![
            Pillar {
                token: "__PILLAR__LOCAL__DNS__",
                value: local,
            },
            Pillar {
                token: "__PILLAR__DNS__SERVER__",
                value: Ok(self.dns_server.clone().unwrap_or_default()),
            },
            Pillar {
                token: "__PILLAR__CLUSTER__DNS__",
                value: cluster,
            },
            Pillar {
                token: "__PILLAR__UPSTREAM__SERVERS__",
                value: Ok("/etc/resolv.conf".to_owned()),
            },
            Pillar {
                token: "__PILLAR__DNS__DOMAIN__",
                value: Ok(self.dns_domain.clone()),
            },
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(pillars: &'a [Pillar], token: &str) -> &'a Result<String, String> {
        &pillars.iter().find(|p| p.token == token).unwrap().value
    }

    #[test]
    fn placeholders_come_from_the_flags_and_the_service_environment() {
        let flags = NodeLocal {
            localip: Some("169.254.20.10,10.96.0.10".into()),
            upstreamsvc: "kube-dns-upstream".into(),
            dns_server: None,
            dns_domain: "cluster.local".into(),
        };
        let env = HashMap::from([(
            "KUBE_DNS_UPSTREAM_SERVICE_HOST".to_owned(),
            "10.96.0.11".to_owned(),
        )]);
        let p = flags.pillars(&env).unwrap();
        assert_eq!(
            value(&p, "__PILLAR__LOCAL__DNS__"),
            &Ok("169.254.20.10 10.96.0.10".into())
        );
        assert_eq!(
            value(&p, "__PILLAR__CLUSTER__DNS__"),
            &Ok("10.96.0.11".into())
        );
        assert_eq!(value(&p, "__PILLAR__DNS__SERVER__"), &Ok(String::new()));
        assert_eq!(
            value(&p, "__PILLAR__UPSTREAM__SERVERS__"),
            &Ok("/etc/resolv.conf".into())
        );
        let missing = flags.pillars(&HashMap::new()).unwrap();
        let hint = value(&missing, "__PILLAR__CLUSTER__DNS__")
            .clone()
            .unwrap_err();
        assert!(
            hint.starts_with("$KUBE_DNS_UPSTREAM_SERVICE_HOST"),
            "{hint}"
        );
        let bad = NodeLocal {
            localip: Some("169.254.20.10,nope".into()),
            ..flags
        };
        assert_eq!(
            bad.pillars(&env).unwrap_err(),
            "--localip: \"nope\" is not an IP address"
        );
    }
}
