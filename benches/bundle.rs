//! Bundle reading and dedup on the peer workloads of ../shared/peers (gen.py shapes:
//! N distinct self-signed P-256 roots, ~571 bytes of PEM each; the 20,000-certificate
//! duplicate bundle). Set MESHTRUST_PEERS_DATA to a directory made by
//! `python3 ../shared/peers/gen.py DIR`; without it the bench runs gen.py into a temp dir.
//!
//! Compare with ../shared/peers/README.md: Go parses 8.5 us/cert, Python cryptography 5.3 us
//! (lazy); Go's PEM-level dedup of bundle-dup-10000 takes 54 ms.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use meshtrust::bundle::{self, Bundle};
use meshtrust::{Fingerprint, pem};

fn data_dir() -> PathBuf {
    if let Ok(d) = std::env::var("MESHTRUST_PEERS_DATA") {
        return PathBuf::from(d);
    }
    let dir = std::env::temp_dir().join("meshtrust-bench-peers-data");
    if !dir.join("meta.json").exists() {
        let gen_py = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/peers/gen.py");
        let status = std::process::Command::new("python3")
            .arg(&gen_py)
            .arg(&dir)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "set MESHTRUST_PEERS_DATA or make {} runnable",
            gen_py.display()
        );
    }
    dir
}

fn parse(c: &mut Criterion) {
    let dir = data_dir();
    let mut g = c.benchmark_group("parse");
    g.measurement_time(Duration::from_secs(8));
    for n in [100usize, 1000, 10000] {
        let bytes = std::fs::read(dir.join(format!("bundle-{n}.pem"))).unwrap();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("Bundle::parse", n), &bytes, |b, bytes| {
            b.iter(|| Bundle::parse(bytes).unwrap())
        });
        // The file's bytes handed over (what a caller that just read the file does): no copy.
        g.bench_with_input(
            BenchmarkId::new("Bundle::parse_vec", n),
            &bytes,
            |b, bytes| {
                b.iter_batched(
                    || bytes.clone(),
                    |v| Bundle::parse_vec(v).unwrap(),
                    criterion::BatchSize::LargeInput,
                )
            },
        );
        if n == 10000 {
            g.bench_with_input(
                BenchmarkId::new("Bundle::parse_strict", n),
                &bytes,
                |b, bytes| b.iter(|| Bundle::parse_strict(bytes).unwrap()),
            );
            // The floor: PEM framing + base64 only, then + SHA-256 of each DER.
            g.bench_with_input(
                BenchmarkId::new("floor pem::parse", n),
                &bytes,
                |b, bytes| b.iter(|| pem::parse(bytes).unwrap()),
            );
            g.bench_with_input(
                BenchmarkId::new("floor pem+sha256", n),
                &bytes,
                |b, bytes| {
                    b.iter(|| {
                        pem::blocks(bytes)
                            .map(|blk| Fingerprint::of(&blk.unwrap().der))
                            .collect::<Vec<_>>()
                    })
                },
            );
        }
    }
    g.finish();
}

fn dedup(c: &mut Criterion) {
    let dir = data_dir();
    let bytes = std::fs::read(dir.join("bundle-dup-10000.pem")).unwrap();
    let mut g = c.benchmark_group("dedup bundle-dup-10000");
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(20000));
    g.bench_function("dedup_pem (frame+sha256+set)", |b| {
        b.iter(|| bundle::dedup_pem(&bytes).unwrap())
    });
    g.bench_function("Bundle::parse + dedup", |b| {
        b.iter(|| Bundle::parse(&bytes).unwrap().dedup())
    });
    let parsed = Bundle::parse(&bytes).unwrap();
    assert_eq!(parsed.dedup().len(), 10000);
    g.bench_function("dedup (pre-parsed)", |b| b.iter(|| parsed.dedup()));
    g.finish();
}

/// What derwalk buys: meshtrust's certificate reader (one strict DER walk recording spans and
/// the fields path building needs) against x509-cert's full decode, on the same 10,000 DER
/// certificates (PEM already decoded).
fn decode(c: &mut Criterion) {
    use der::Decode;
    let bytes = std::fs::read(data_dir().join("bundle-10000.pem")).unwrap();
    let ders: Vec<Vec<u8>> = pem::parse(&bytes)
        .unwrap()
        .into_iter()
        .map(|b| b.der)
        .collect();
    let mut g = c.benchmark_group("decode 10000 DER certificates");
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(ders.len() as u64));
    g.bench_function("meshtrust Certificate::from_der (derwalk)", |b| {
        b.iter(|| {
            ders.iter()
                .map(|d| meshtrust::Certificate::from_der(d).unwrap())
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("x509_cert::Certificate::from_der", |b| {
        b.iter(|| {
            ders.iter()
                .map(|d| x509_cert::Certificate::from_der(d).unwrap())
                .collect::<Vec<_>>()
        })
    });
    g.finish();
}

criterion_group!(benches, parse, dedup, decode);
criterion_main!(benches);
