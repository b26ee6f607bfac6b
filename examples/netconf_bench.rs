//! NETCONF benchmark (DESIGN.md §6): single-entry edit-config+commit latency against datastore
//! size, and get-config of a large running datastore, measured over SSH with a native client.
//!
//! Every figure is printed beside a baseline measured in the same run: a `<get-config>` with an
//! empty subtree filter, a full round trip through SSH, framing, parsing and dispatch that touches
//! no data.
//!
//! ```sh
//! cargo build --release --bin mldhb --example netconf_bench
//! cargo run --release --example netconf_bench -- \
//!     [--sizes 0,1000,10000,50000] [--samples 200] [--get-config-size 100000]
//! ```
//!
//! The agent binary is `$MLDHB_BIN`, or `mldhb` in the directory above the example's own
//! (`target/release/mldhb` for `target/release/examples/netconf_bench`).

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use mldhb::netconf::client::{Client, Credentials};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NS_BASE: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
const NS_IF: &str = "urn:ietf:params:xml:ns:yang:ietf-interfaces";
const NS_IANAIFT: &str = "urn:ietf:params:xml:ns:yang:iana-if-type";

#[derive(Parser, Debug)]
#[command(about = "NETCONF edit-config+commit and get-config benchmark against the mldhb agent")]
struct Args {
    /// Datastore sizes (interface entries in running) at which transactions are measured.
    #[arg(long, value_delimiter = ',', default_value = "0,1000,10000,50000")]
    sizes: Vec<usize>,
    /// Single-entry transactions (and baseline round trips) measured per size.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Entries in running for the get-config measurement (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    get_config_size: usize,
    /// Timed get-config runs; the median is reported.
    #[arg(long, default_value_t = 7)]
    get_config_runs: usize,
    /// Stop sampling a size after this many seconds of transactions (once --min-samples are
    /// done), so that a slow size still reports; 0 means no limit.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// Fewest transactions per size when --max-seconds cuts sampling short.
    #[arg(long, default_value_t = 20)]
    min_samples: usize,
    /// Entries per edit-config+commit when preloading.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Agent binary (default: $MLDHB_BIN, else `mldhb` next to the examples directory).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Keep the agent's datastore directory and log.
    #[arg(long)]
    keep: bool,
}

// ---------------------------------------------------------------------------------------------
// The agent under test

struct Agent {
    child: Child,
    dir: PathBuf,
    port: u16,
    keep: bool,
}

impl Agent {
    fn start(bin: &Path, keep: bool) -> Result<Agent> {
        let dir = std::env::temp_dir().join(format!(
            "mldhb-bench-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir)?;
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let config = dir.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\nauth_failure_delay_ms = 300\n\
                 manage_interfaces = true\nmanage_multicast = true\n[[users]]\nname = \"admin\"\npassword = \"admin\"\ngroups = [\"admin\"]\n"
            ),
        )?;
        let log = std::fs::File::create(dir.join("agent.log"))?;
        let child = Command::new(bin)
            .arg("agent")
            .arg("--config")
            .arg(&config)
            .arg("--datastore")
            .arg(dir.join("ds"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut agent = Agent {
            child,
            dir,
            port,
            keep,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = agent.child.try_wait()? {
                bail!("agent exited ({status}): {}", agent.log_tail());
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(agent);
            }
            if Instant::now() > deadline {
                bail!("agent did not listen on port {port}: {}", agent.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default();
        log[log.len().saturating_sub(2000)..].to_string()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The agent's peak and current resident set size, in MiB (`VmHWM`, `VmRSS`).
    fn memory(&self) -> Option<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let kib = |key: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        };
        Some((kib("VmHWM:")? / 1024.0, kib("VmRSS:")? / 1024.0))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SIGTERM first, so the agent closes its datastores; SIGKILL if it lingers.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.keep {
            eprintln!("kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn agent_binary(arg: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = arg {
        return Ok(p);
    }
    if let Some(p) = std::env::var_os("MLDHB_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("mldhb"))
        .ok_or_else(|| anyhow!("cannot locate the agent binary; set MLDHB_BIN"))?;
    if !bin.exists() {
        bail!(
            "{} does not exist; build it with `cargo build --release --bin mldhb` or set MLDHB_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

// ---------------------------------------------------------------------------------------------
// A NETCONF client over SSH

/// The library's NETCONF client, checking replies the way the benchmark needs: cheaply, so
/// the scan of a large reply is not timed with the agent's work.
struct NetconfClient {
    inner: Client,
    /// Bytes of the last reply (for reporting the get-config size).
    last_reply_len: usize,
}

impl NetconfClient {
    async fn connect(port: u16) -> Result<NetconfClient> {
        // The agent was started by this process a moment ago with a fresh host key.
        let inner = Client::connect(
            "127.0.0.1",
            port,
            "admin",
            &Credentials::Password("admin".into()),
            Box::new(|_| Ok(())),
        )
        .await?;
        if !inner
            .capabilities
            .iter()
            .any(|c| c == "urn:ietf:params:netconf:base:1.1")
        {
            bail!("the agent does not announce base:1.1");
        }
        Ok(NetconfClient {
            inner,
            last_reply_len: 0,
        })
    }

    /// Sends one `<rpc>` with `body` and returns the reply; an `<rpc-error>` is an error.
    async fn rpc(&mut self, body: &str) -> Result<Vec<u8>> {
        let reply = self.inner.rpc_raw(body).await?;
        self.last_reply_len = reply.len();
        // An <rpc-error> is a child of <rpc-reply>, so it starts within the first bytes.
        if contains(&reply[..reply.len().min(1024)], b"rpc-error>") {
            bail!(
                "rpc-error in reply to {}: {}",
                &body[..body.len().min(120)],
                String::from_utf8_lossy(&reply[..reply.len().min(2000)])
            );
        }
        Ok(reply)
    }

    async fn rpc_ok(&mut self, body: &str) -> Result<()> {
        let reply = self.rpc(body).await?;
        if !contains(&reply, b"ok/>") {
            bail!("expected <ok/>: {}", String::from_utf8_lossy(&reply));
        }
        Ok(())
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

// ---------------------------------------------------------------------------------------------
// Requests

fn edit_candidate(names: impl Iterator<Item = String>) -> String {
    let mut s = format!(
        "<edit-config><target><candidate/></target>\
         <config xmlns=\"{NS_BASE}\"><interfaces xmlns=\"{NS_IF}\" xmlns:ianaift=\"{NS_IANAIFT}\">"
    );
    for name in names {
        s.push_str("<interface><name>");
        s.push_str(&name);
        s.push_str(
            "</name><type>ianaift:ethernetCsmacd</type><description>x</description></interface>",
        );
    }
    s.push_str("</interfaces></config></edit-config>");
    s
}

const COMMIT: &str = "<commit/>";
const GET_RUNTIMES: &str = r#"<get><filter type="subtree"><system xmlns="urn:mldhb:yang:mldhb-system"><runtime/></system></filter></get>"#;
const GET_CONFIG_ALL: &str = "<get-config><source><running/></source></get-config>";
const GET_CONFIG_EMPTY: &str =
    "<get-config><source><running/></source><filter type=\"subtree\"/></get-config>";

// ---------------------------------------------------------------------------------------------
// Statistics

#[derive(Clone, Copy)]
struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
    min: Duration,
    max: Duration,
}

fn stats(samples: &[Duration]) -> Stats {
    let mut v = samples.to_vec();
    v.sort();
    let pct = |p: f64| v[(((v.len() as f64) * p).ceil() as usize).clamp(1, v.len()) - 1];
    let total: Duration = v.iter().sum();
    Stats {
        p50: pct(0.50),
        p99: pct(0.99),
        mean: total / v.len() as u32,
        min: v[0],
        max: v[v.len() - 1],
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

// ---------------------------------------------------------------------------------------------

/// Adds entries `pre-<from>`..`pre-<to>` to running in batches of edit-config + commit.
async fn preload(c: &mut NetconfClient, from: usize, to: usize, batch: usize) -> Result<()> {
    let mut i = from;
    while i < to {
        let end = (i + batch.max(1)).min(to);
        let edit = edit_candidate((i..end).map(|n| format!("pre-{n}")));
        let t0 = Instant::now();
        c.rpc_ok(&edit).await?;
        let t1 = Instant::now();
        c.rpc_ok(COMMIT).await?;
        let t2 = Instant::now();
        println!(
            "  preload {:>6}..{:<6} edit-config {:8.1} ms  commit {:8.1} ms  ({} bytes)",
            i,
            end,
            ms(t1 - t0),
            ms(t2 - t1),
            edit.len()
        );
        i = end;
    }
    Ok(())
}

async fn baseline(c: &mut NetconfClient, n: usize) -> Result<Vec<Duration>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let reply = c.rpc(GET_CONFIG_EMPTY).await?;
        v.push(t.elapsed());
        if contains(&reply, b"<interface") {
            bail!("the empty filter selected data");
        }
    }
    Ok(v)
}

struct SizeResult {
    size: usize,
    n: usize,
    txn: Stats,
    edit: Stats,
    commit: Stats,
    base: Stats,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    let mut sizes = args.sizes.clone();
    sizes.sort();
    sizes.dedup();
    let bin = agent_binary(args.bin.clone())?;
    let agent = Agent::start(&bin, args.keep)?;
    println!(
        "agent {} (pid {}) on 127.0.0.1:{}, datastore {}",
        bin.display(),
        agent.pid(),
        agent.port,
        agent.dir.join("ds").display()
    );
    let t = Instant::now();
    let mut c = NetconfClient::connect(agent.port).await?;
    println!(
        "connected over SSH (base:1.1 chunked) in {:.1} ms",
        ms(t.elapsed())
    );

    // Which runtimes run (the figures hold for the agent as examples/agent.toml runs it).
    let runtimes = c.rpc(GET_RUNTIMES).await?;
    let text = String::from_utf8_lossy(&runtimes);
    let up = text.matches("<state>up</state>").count();
    let down = text.matches("<state>down</state>").count();
    println!("runtimes: {up} up, {down} down (manage_interfaces and manage_multicast on)");
    if down > 0 {
        println!("  {text}");
    }

    // Warm-up: a few of each request so first-use costs are not measured.
    for _ in 0..20 {
        c.rpc(GET_CONFIG_EMPTY).await?;
    }
    for i in 0..5 {
        c.rpc_ok(&edit_candidate(std::iter::once(format!("warm-{i}"))))
            .await?;
        c.rpc_ok(COMMIT).await?;
    }
    // In running from here on: the warm-up entries plus what each step adds.
    let mut entries = 5usize;
    let mut preloaded = 0usize;
    let mut results: Vec<SizeResult> = Vec::new();

    for &size in &sizes {
        println!("\n== datastore size {size} ==");
        if size > entries {
            let add = size - entries;
            let t = Instant::now();
            preload(&mut c, preloaded, preloaded + add, args.batch).await?;
            println!(
                "  preloaded {add} entries in {:.2} s",
                t.elapsed().as_secs_f64()
            );
            preloaded += add;
            entries += add;
        }
        let before = entries;
        let base = stats(&baseline(&mut c, args.samples).await?);
        let mut txn = Vec::with_capacity(args.samples);
        let mut edit = Vec::with_capacity(args.samples);
        let mut commit = Vec::with_capacity(args.samples);
        let started = Instant::now();
        for i in 0..args.samples {
            if args.max_seconds > 0
                && i >= args.min_samples
                && started.elapsed() > Duration::from_secs(args.max_seconds)
            {
                println!(
                    "  stopped after {i} of {} transactions: --max-seconds {} reached",
                    args.samples, args.max_seconds
                );
                break;
            }
            let req = edit_candidate(std::iter::once(format!("bench-{size}-{i}")));
            let t0 = Instant::now();
            c.rpc_ok(&req).await?;
            let t1 = Instant::now();
            c.rpc_ok(COMMIT).await?;
            let t2 = Instant::now();
            edit.push(t1 - t0);
            commit.push(t2 - t1);
            txn.push(t2 - t0);
            entries += 1;
        }
        let r = SizeResult {
            size,
            n: txn.len(),
            txn: stats(&txn),
            edit: stats(&edit),
            commit: stats(&commit),
            base,
        };
        println!(
            "  entries in running: {before}..{entries} over {} transactions",
            txn.len()
        );
        println!(
            "  baseline get-config (empty filter): p50 {:.3} ms  p99 {:.3} ms  mean {:.3} ms",
            ms(r.base.p50),
            ms(r.base.p99),
            ms(r.base.mean)
        );
        println!(
            "  edit-config+commit: p50 {:.3} ms  p99 {:.3} ms  mean {:.3} ms  min {:.3}  max {:.3}",
            ms(r.txn.p50),
            ms(r.txn.p99),
            ms(r.txn.mean),
            ms(r.txn.min),
            ms(r.txn.max)
        );
        println!(
            "    edit-config alone p50 {:.3} ms, commit alone p50 {:.3} ms",
            ms(r.edit.p50),
            ms(r.commit.p50)
        );
        println!(
            "  ratio to baseline: p50 {:.2}x  p99 {:.2}x  mean {:.2}x",
            ratio(r.txn.p50, r.base.p50),
            ratio(r.txn.p99, r.base.p99),
            ratio(r.txn.mean, r.base.mean)
        );
        std::io::stdout().flush()?;
        results.push(r);
    }

    // Peak RSS once the transactions are done (the datastore loaded), before any get-config.
    let loaded = agent.memory().map(|(peak, _)| (entries, peak));
    let mut get_config = None;
    if args.get_config_size > 0 {
        let size = args.get_config_size;
        println!("\n== get-config of running with {size} entries ==");
        if size > entries {
            let add = size - entries;
            let t = Instant::now();
            preload(&mut c, preloaded, preloaded + add, args.batch).await?;
            println!(
                "  preloaded {add} entries in {:.2} s",
                t.elapsed().as_secs_f64()
            );
            entries += add;
        }
        let base = stats(&baseline(&mut c, args.samples).await?);
        let mut runs = Vec::new();
        let mut bytes = 0;
        let mut found = 0;
        for _ in 0..args.get_config_runs.max(1) {
            let t = Instant::now();
            let reply = c.rpc(GET_CONFIG_ALL).await?;
            runs.push(t.elapsed());
            bytes = reply.len();
            found = count(&reply, b"<interface>") + count(&reply, b"<interface ");
        }
        if found < size {
            bail!("get-config returned {found} interface entries, expected at least {size}");
        }
        let s = stats(&runs);
        println!("  reply {bytes} bytes, {found} interface entries (running holds {entries})");
        println!(
            "  runs: {}",
            runs.iter()
                .map(|d| format!("{:.1}", ms(*d)))
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!(
            "  get-config: median {:.1} ms  min {:.1} ms  max {:.1} ms; baseline p50 {:.3} ms; ratio {:.0}x",
            ms(s.p50),
            ms(s.min),
            ms(s.max),
            ms(base.p50),
            ratio(s.p50, base.p50)
        );
        get_config = Some((size, s, base));
    }

    println!("\n== summary (native Rust client over SSH, durability on) ==");
    println!(
        "{:>8}  {:>7}  {:>9}  {:>9}  {:>9}  {:>11}  {:>9}",
        "entries", "samples", "p50 ms", "p99 ms", "mean ms", "base p50 ms", "p50/base"
    );
    for r in &results {
        println!(
            "{:>8}  {:>7}  {:>9.3}  {:>9.3}  {:>9.3}  {:>11.3}  {:>8.2}x",
            r.size,
            r.n,
            ms(r.txn.p50),
            ms(r.txn.p99),
            ms(r.txn.mean),
            ms(r.base.p50),
            ratio(r.txn.p50, r.base.p50)
        );
    }
    let at = |n: usize| results.iter().find(|r| r.size == n);
    if let Some(big) = results
        .iter()
        .rev()
        .find(|r| r.size >= 50_000)
        .or(results.last())
    {
        let verdict = |ok: bool| if ok { "within budget" } else { "OVER BUDGET" };
        println!(
            "p50 at {} entries: {:.3} ms (budget < 2 ms: {})",
            big.size,
            ms(big.txn.p50),
            verdict(big.txn.p50 < Duration::from_millis(2))
        );
        if let Some(small) = at(1000) {
            if big.size != small.size {
                let q = ratio(big.txn.p50, small.txn.p50);
                println!(
                    "p50 ratio {} / 1000 entries: {:.2} (budget < 1.5: {})",
                    big.size,
                    q,
                    verdict(q < 1.5)
                );
            }
        }
    }
    if let Some((size, s, base)) = get_config {
        println!(
            "get-config of {size} entries: median {:.3} s (budget < 0.3 s: {}), {:.0}x the baseline round trip",
            s.p50.as_secs_f64(),
            if s.p50 < Duration::from_millis(300) {
                "within budget"
            } else {
                "OVER BUDGET"
            },
            ratio(s.p50, base.p50)
        );
    }

    let budget = |peak: f64| {
        if peak * 1.048_576 < 300.0 {
            "within budget"
        } else {
            "OVER BUDGET"
        }
    };
    if let Some((n, peak)) = loaded {
        println!(
            "agent memory after loading {n} entries: peak RSS {peak:.0} MiB (budget < 300 MB: {})",
            budget(peak)
        );
    }
    let memory = agent.memory();
    if let Some((peak, now)) = memory {
        println!(
            "agent memory at the end ({entries} entries, get-config runs included): peak RSS {peak:.0} MiB ({}), now {now:.0} MiB",
            budget(peak)
        );
    }

    // Lines for the README's performance section (collected by scripts/bench).
    println!("README: | entries in running | p50 | p99 | p50 / baseline round trip |");
    println!("README: |---|---|---|---|");
    for r in &results {
        println!(
            "README: | {} | {:.2} ms | {:.2} ms | {:.2}x |",
            thousands(r.size),
            ms(r.txn.p50),
            ms(r.txn.p99),
            ratio(r.txn.p50, r.base.p50)
        );
    }
    println!("README:");
    if let (Some(small), Some(big)) = (at(1000), results.last()) {
        println!(
            "README: p50 ratio {} / 1,000 entries: {:.2}.",
            thousands(big.size),
            ratio(big.txn.p50, small.txn.p50)
        );
    }
    if let Some((size, s, _)) = get_config {
        println!(
            "README: get-config of {} entries: median {:.3} s.",
            thousands(size),
            s.p50.as_secs_f64()
        );
    }
    if let (Some((n, loaded)), Some((peak, _))) = (loaded, memory) {
        println!(
            "README: Agent peak RSS after loading {} entries: {loaded:.0} MiB; {peak:.0} MiB at the \
             end, with {} entries and the get-config runs.",
            thousands(n),
            thousands(entries)
        );
    }

    let _ = c.rpc("<close-session/>").await;
    drop(c);
    drop(agent);
    Ok(())
}

/// 100000 → "100,000".
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
