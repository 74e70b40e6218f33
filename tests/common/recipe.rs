//! Istio's tools/certs recipe (common.mk's rendered configs, Makefile.selfsigned.mk's
//! commands) run with the `openssl` binary: Istio-shaped material made the way operators make
//! it, for the generate and istio tests.

use std::path::Path;
use std::process::Command;

use meshtrust::{Certificate, PrivateKey};

pub fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl binary (test oracle) must be installed");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn read_cert(path: &Path) -> Certificate {
    let bytes = std::fs::read(path).unwrap();
    Certificate::from_der_strict(&meshtrust::pem::parse(&bytes).unwrap()[0].der).unwrap()
}

pub fn read_key(path: &Path) -> PrivateKey {
    PrivateKey::from_pem(&std::fs::read(path).unwrap()).unwrap()
}

/// common.mk's `root-ca.conf` target, rendered with its default variables.
pub const ROOT_CA_CONF: &str = "[ req ]
encrypt_key = no
prompt = no
utf8 = yes
default_md = sha256
default_bits = 4096
req_extensions = req_ext
x509_extensions = req_ext
distinguished_name = req_dn
[ req_ext ]
subjectKeyIdentifier = hash
basicConstraints = critical, CA:true
keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign
[ req_dn ]
O = Istio
CN = Root CA
";

/// common.mk's `%/intermediate.conf` target for `cluster1`.
pub const INTERMEDIATE_CONF: &str = "[ req ]
encrypt_key = no
prompt = no
utf8 = yes
default_md = sha256
default_bits = 4096
req_extensions = req_ext
x509_extensions = req_ext
distinguished_name = req_dn
[ req_ext ]
subjectKeyIdentifier = hash
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, digitalSignature, nonRepudiation, keyEncipherment, keyCertSign
subjectAltName=@san
[ san ]
DNS.1 = istiod.istio-system.svc
[ req_dn ]
O = Istio
CN = Intermediate CA
L = cluster1
";

/// Runs `make -f Makefile.selfsigned.mk root-ca cluster1-cacerts`, command for command.
pub fn istio_recipe(dir: &Path) -> (Certificate, Certificate) {
    std::fs::write(dir.join("root-ca.conf"), ROOT_CA_CONF).unwrap();
    std::fs::create_dir(dir.join("cluster1")).unwrap();
    std::fs::write(dir.join("cluster1/intermediate.conf"), INTERMEDIATE_CONF).unwrap();
    openssl(dir, &["genrsa", "-out", "root-key.pem", "4096"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "root-key.pem",
            "-config",
            "root-ca.conf",
            "-out",
            "root-cert.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "3650",
            "-signkey",
            "root-key.pem",
            "-extensions",
            "req_ext",
            "-extfile",
            "root-ca.conf",
            "-in",
            "root-cert.csr",
            "-out",
            "root-cert.pem",
        ],
    );
    openssl(dir, &["genrsa", "-out", "cluster1/ca-key.pem", "4096"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-config",
            "cluster1/intermediate.conf",
            "-key",
            "cluster1/ca-key.pem",
            "-out",
            "cluster1/cluster-ca.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-days",
            "730",
            "-CA",
            "root-cert.pem",
            "-CAkey",
            "root-key.pem",
            "-CAcreateserial",
            "-extensions",
            "req_ext",
            "-extfile",
            "cluster1/intermediate.conf",
            "-in",
            "cluster1/cluster-ca.csr",
            "-out",
            "cluster1/ca-cert.pem",
        ],
    );
    (
        read_cert(&dir.join("root-cert.pem")),
        read_cert(&dir.join("cluster1/ca-cert.pem")),
    )
}
