//! `tcpreset-lab register`: the durable-registration benchmark's load: concurrent clients on
//! tcpresetd's control socket fill the table, then add and refresh at that size; prints one
//! table row per phase (rate, latency median/p99/max).
use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct RegisterArgs {
    /// The daemon's control socket.
    #[arg(long)]
    socket: PathBuf,
    /// Rules to fill the table with first.
    #[arg(long, default_value_t = 10_000)]
    rules: usize,
    /// Concurrent clients (one connection each).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Changes per measured phase (new rules at that size, then refreshes).
    #[arg(long, default_value_t = 10_000)]
    ops: usize,
    #[arg(long, default_value = "eth1")]
    sniff_if: String,
    #[arg(long, default_value = "eth0")]
    reset_if: String,
}

/// The i-th benchmark host: 10.200.0.1 upwards, never a .0 or .255 (nothing is sent to them).
fn host(i: usize) -> Ipv4Addr {
    let i = u32::try_from(i).expect("fewer than 2^32 hosts");
    let (a, rest) = (200 + i / (254 * 256), i % (254 * 256));
    Ipv4Addr::new(
        10,
        u8::try_from(a).expect("fewer than 3.6 M hosts"),
        (rest / 254) as u8,
        (rest % 254 + 1) as u8,
    )
}

/// Sends the adds of hosts `range` from `clients` connections; the latency of each answer.
fn run(args: &RegisterArgs, hosts: std::ops::Range<usize>, seconds: u64) -> Result<Vec<Duration>> {
    let next = Arc::new(AtomicUsize::new(hosts.start));
    let handles: Vec<_> = (0..args.clients)
        .map(|_| {
            let (next, end) = (Arc::clone(&next), hosts.end);
            let socket = args.socket.clone();
            let (sniff, reset) = (args.sniff_if.clone(), args.reset_if.clone());
            thread::spawn(move || -> Result<Vec<Duration>> {
                let stream = UnixStream::connect(&socket)
                    .with_context(|| format!("connecting to {}", socket.display()))?;
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut writer = stream;
                let mut latencies = Vec::new();
                let mut answer = String::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        return Ok(latencies);
                    }
                    let line = format!(
                        "{{\"v\":1,\"op\":\"add\",\"engid\":\"bench\",\"sniff_if\":\"{sniff}\",\"reset_if\":\"{reset}\",\"host\":\"{}\",\"seconds\":\"{seconds}\"}}\n",
                        host(i)
                    );
                    let t = Instant::now();
                    writer.write_all(line.as_bytes())?;
                    answer.clear();
                    reader.read_line(&mut answer)?;
                    latencies.push(t.elapsed());
                    if !answer.contains("\"added\"") {
                        bail!("add {} refused: {answer}", host(i));
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(
            h.join()
                .map_err(|_| anyhow::anyhow!("a client panicked"))??,
        );
    }
    Ok(all)
}

fn row(phase: &str, table: usize, clients: usize, wall: Duration, mut lat: Vec<Duration>) {
    lat.sort_unstable();
    let q = |f: f64| lat[((lat.len() - 1) as f64 * f) as usize].as_secs_f64() * 1e3;
    println!(
        "| {phase} | {table} | {clients} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
        lat.len(),
        lat.len() as f64 / wall.as_secs_f64(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
}

pub fn run_all(args: RegisterArgs) -> Result<bool> {
    println!("| phase | rules in the table | clients | changes | durable changes/s | median ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let t = Instant::now();
    let lat = run(&args, 0..args.rules, 3600)?;
    row("fill", args.rules / 2, args.clients, t.elapsed(), lat);
    let t = Instant::now();
    let lat = run(&args, args.rules..args.rules + args.ops, 3600)?;
    row("add new", args.rules, args.clients, t.elapsed(), lat);
    let t = Instant::now();
    let lat = run(&args, 0..args.ops.min(args.rules), 7200)?;
    row(
        "refresh",
        args.rules + args.ops,
        args.clients,
        t.elapsed(),
        lat,
    );
    let serial = RegisterArgs { clients: 1, ..args };
    let t = Instant::now();
    let lat = run(&serial, 0..200, 7200)?;
    row(
        "refresh, one client",
        serial.rules + serial.ops,
        1,
        t.elapsed(),
        lat,
    );
    Ok(true)
}
