//! `tcpreset`: registers, lists and cancels resets with `tcpresetd` over its Unix socket.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tcpreset::cli::{self, exit, Command};
use tcpreset::io::control::{self, ClientError};
use tcpreset::io::iface;
use tcpreset::proto::{ErrorKind, Request, Response, RuleView};

const TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env_socket = std::env::var_os("TCPRESET_SOCKET").map(PathBuf::from);
    let inv = match cli::parse(&args, env_socket) {
        Ok(inv) => inv,
        Err(e) => return fail(exit::USAGE, &e.to_string()),
    };
    let socket = inv
        .socket
        .unwrap_or_else(|| PathBuf::from(control::DEFAULT_SOCKET));
    let (request, json) = match inv.command {
        Command::Help => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Command::Add(add) => {
            if let Err(e) = iface::check_pair(&add.sniff_if, &add.reset_if) {
                return fail(exit::INTERFACE, &e.to_string());
            }
            (Request::Add(add), false)
        }
        Command::List { json } => (Request::List, json),
        Command::Cancel(key) => (Request::Cancel(key), false),
        Command::Flush => (Request::Flush, false),
    };
    let response = match control::call(&socket, request, TIMEOUT) {
        Ok(r) => r,
        Err(e) => {
            let code = match e {
                ClientError::NotRunning(_) | ClientError::PermissionDenied(_) => exit::DAEMON,
                _ => exit::INTERNAL,
            };
            return fail(code, &e.to_string());
        }
    };
    match response {
        Response::Added { rule, refreshed } => {
            let verb = if refreshed { "refreshed" } else { "added" };
            println!("reset {verb}: {}", describe(&rule));
        }
        Response::Rules { rules } => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rules).expect("serializes")
                );
            } else {
                print_table(&rules);
            }
        }
        Response::Cancelled { rule } => println!("reset cancelled: {}", describe(&rule)),
        Response::Flushed { count } => println!("flushed {count} reset rule(s)"),
        Response::Error { kind, message } => {
            let code = match kind {
                ErrorKind::Interface => exit::INTERFACE,
                _ => exit::REFUSED,
            };
            return fail(code, &format!("tcpresetd refused: {message}"));
        }
    }
    ExitCode::SUCCESS
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("tcpreset: error: {message}");
    ExitCode::from(code)
}

fn port_text(rule: &RuleView) -> String {
    rule.port
        .map_or("all ports".to_owned(), |p| format!("port {p}"))
}

fn when(rule: &RuleView) -> String {
    chrono::DateTime::from_timestamp_micros((rule.expires_unix * 1e6) as i64)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

fn describe(rule: &RuleView) -> String {
    format!(
        "engid {} host {} ({}) sniffing {} resetting via {}, expires {} (in {:.0} s)",
        rule.engid,
        rule.host,
        port_text(rule),
        rule.sniff_if,
        rule.reset_if,
        when(rule),
        rule.seconds_left
    )
}

fn print_table(rules: &[RuleView]) {
    if rules.is_empty() {
        println!("no active resets");
        return;
    }
    let rows: Vec<[String; 8]> = rules
        .iter()
        .map(|r| {
            [
                r.engid.clone(),
                r.host.clone(),
                r.port.map_or("*".into(), |p| p.to_string()),
                r.sniff_if.clone(),
                r.reset_if.clone(),
                format!("{:.0}", r.seconds_left),
                r.segments_matched.to_string(),
                r.rsts_sent.to_string(),
            ]
        })
        .collect();
    let head = [
        "ENGID", "HOST", "PORT", "SNIFF", "RESET", "LEFT(s)", "MATCHED", "RSTS",
    ];
    let mut widths = head.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    println!("{}", line(head.to_vec()));
    for row in &rows {
        println!("{}", line(row.iter().map(String::as_str).collect()));
    }
}
