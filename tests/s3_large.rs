//! Large runs through the fault-injecting proxy, for measuring by hand (ignored by default):
//!
//! ```sh
//! eval "$(scripts/s3-servers start)"
//! LDV_BIN=target/release/ldv LDV_LARGE_FILE=/path/to/1GiB cargo test --release --test s3_large -- --ignored --nocapture
//! ```
//! A 1 GiB put and get through 10% connection resets, 10% 503 SlowDown and 2% stalls must come
//! back byte-identical, with the retries counted in `--json` stats.

#[path = "common/proxy.rs"]
mod proxy;

use std::process::Command;
use std::time::{Duration, Instant};

use proxy::{FaultProxy, Faults};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set for this run"))
}

fn ldv(home: &std::path::Path, endpoint: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env("LDV_BIN"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("LDV_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("cfg"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("AWS_ACCESS_KEY_ID", env("LDV_TEST_S3_ACCESS_KEY"))
        .env("AWS_SECRET_ACCESS_KEY", env("LDV_TEST_S3_SECRET_KEY"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_CONFIG_FILE", "/nonexistent/ldv")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/ldv")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(args);
    cmd.output().expect("run ldv")
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "ldv failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ldv --json output")
}

fn run_through_proxy(var: &str) {
    let upstream: std::net::SocketAddr = env(var)
        .trim_start_matches("http://")
        .parse()
        .expect("endpoint host:port");
    let proxy = FaultProxy::start(
        upstream,
        Faults::none()
            .reset(0.10)
            .slow_down(0.10)
            .stall(0.02, Duration::from_millis(1500))
            .seed(7),
    );
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[profiles.p]\nbackend = { type = \"s3\", bucket = \"ldv-test\", prefix = \"large\", path_style = true }\nretry = { max_retries = 10, initial_backoff = \"50ms\", max_backoff = \"2s\" }\ntimeouts = { connect = \"5s\", read = \"1s\", write = \"30s\" }\n",
    )
    .unwrap();
    let config = cfg.to_str().unwrap();
    let file = env("LDV_LARGE_FILE");
    let endpoint = proxy.endpoint();
    let run = |more: &[&str]| {
        let args: Vec<&str> = ["--config", config, "--profile", "p", "--json"]
            .iter()
            .chain(more)
            .copied()
            .collect();
        json(&ldv(home.path(), &endpoint, &args))
    };
    run(&["init"]);
    let started = Instant::now();
    let put = run(&["put", &file, "big"]);
    let put_secs = started.elapsed().as_secs_f64();
    let out = home.path().join("out");
    let started = Instant::now();
    let get = run(&["get", "big", out.to_str().unwrap()]);
    let get_secs = started.elapsed().as_secs_f64();
    let same = std::process::Command::new("cmp")
        .arg(&file)
        .arg(&out)
        .status()
        .unwrap()
        .success();
    let counts = proxy.counts();
    println!(
        "{var}: put {put_secs:.1} s ({} retries), get {get_secs:.1} s ({} retries), identical {same}, proxy {counts:?}",
        put["stats"]["retries"], get["stats"]["retries"]
    );
    assert!(same, "the file read back differs");
    assert!(put["stats"]["retries"].as_u64().unwrap() > 0);
    assert!(get["stats"]["retries"].as_u64().unwrap() > 0);
}

#[test]
#[ignore = "a manual large run; see the module docs"]
fn one_gib_through_the_fault_proxy_on_moto() {
    run_through_proxy("LDV_TEST_S3_MOTO_ENDPOINT");
}

#[test]
#[ignore = "a manual large run; see the module docs"]
fn one_gib_through_the_fault_proxy_on_s3s_fs() {
    run_through_proxy("LDV_TEST_S3_S3SFS_ENDPOINT");
}
