//! The simulator's certificate authority, its serving certificate, and client kubeconfigs.
//!
//! A fresh CA is generated at every start (rcgen); the serving certificate it signs carries the
//! IP SAN `127.0.0.1` and the DNS SAN `localhost`. The TLS listener offers ALPN `http/1.1` only.
//! Kubeconfigs embed the CA as `certificate-authority-data` and a per-client bearer token.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// TLS setup errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("configuring TLS: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("writing kubeconfig {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rendering kubeconfig: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
}

/// The CA and the serving identity.
pub struct Pki {
    /// CA certificate, PEM.
    pub ca_pem: String,
    /// The rustls server configuration.
    pub server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

/// Generates a CA and a serving certificate for 127.0.0.1 / localhost.
pub fn generate() -> Result<Pki, Error> {
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kube-sim-ca");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    params.distinguished_name.push(DnType::CommonName, "kube-sim");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;

    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Pki {
        ca_pem: ca.pem(),
        server_config: Arc::new(config),
    })
}

/// The kubeconfig YAML for one client.
pub fn kubeconfig(
    server_url: &str,
    client: &str,
    token: &str,
    ca_pem: Option<&str>,
) -> Result<String, Error> {
    let mut cluster = serde_json::json!({"server": server_url});
    if let Some(pem) = ca_pem {
        cluster["certificate-authority-data"] = base64::engine::general_purpose::STANDARD.encode(pem).into();
    }
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kube-sim", "cluster": cluster}],
        "users": [{"name": client, "user": {"token": token}}],
        "contexts": [{"name": client, "context": {"cluster": "kube-sim", "user": client, "namespace": "default"}}],
        "current-context": client,
    });
    Ok(serde_yaml_ng::to_string(&doc)?)
}

/// Writes `dir/<client>.kubeconfig`.
pub fn write_kubeconfig(dir: &Path, client: &str, yaml: &str) -> Result<PathBuf, Error> {
    let path = dir.join(format!("{client}.kubeconfig"));
    std::fs::write(&path, yaml).map_err(|source| Error::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_ca_and_kubeconfig() {
        let pki = generate().unwrap();
        assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(pki.server_config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let y = kubeconfig("https://127.0.0.1:1", "a", "tok", Some(&pki.ca_pem)).unwrap();
        let v: serde_json::Value = serde_yaml_ng::from_str(&y).unwrap();
        assert_eq!(v["users"][0]["user"]["token"], "tok");
        assert_eq!(v["contexts"][0]["context"]["namespace"], "default");
        assert!(v["clusters"][0]["cluster"]["certificate-authority-data"].is_string());
    }
}
