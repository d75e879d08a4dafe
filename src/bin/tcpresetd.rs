//! `tcpresetd`: the reset daemon (foreground), or `--replay` for deterministic offline runs.
use anyhow::Result;
use clap::Parser;
use std::path::Path;
use std::process::ExitCode;
use tcpreset::cli::daemon::DaemonArgs;
use tcpreset::config::Config;
use tcpreset::flows::{FlowBudget, FlowTable};
use tcpreset::io::{logging, replay_files, service};

/// mimalloc: loading 100,000 rules and freeing them costs a third of what glibc's malloc does,
/// and the capture threads' short-lived buffers stay thread-local.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` of mimalloc.h (v2 and v3): libmimalloc-sys exports the setter but not
/// this constant; the test below checks the index against the linked mimalloc.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Returns freed memory to the system at once instead of after 10 ms: a flow table that grows
/// to a million flows frees its old, smaller arrays as it goes, and they must not add to the peak.
/// mimalloc's own `MIMALLOC_PURGE_DELAY`, when set, still wins.
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set only stores an option value.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
    }
}

/// No transparent huge pages for this process: with memory returned at once, each arena page
/// mimalloc maps again faulted in a whole 2 MiB page that the kernel zeroes, a third of the
/// daemon's CPU under a burst of registrations (BENCHMARKS.md, issue 10 item 8). 4 KiB pages
/// are zeroed only where touched.
fn no_transparent_huge_pages() {
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("tcpresetd: cannot turn transparent huge pages off ({e}); going on with them");
    }
}

fn main() -> ExitCode {
    purge_freed_memory_at_once();
    no_transparent_huge_pages();
    let args = DaemonArgs::parse();
    let result = match (&args.replay, &args.rules, &args.inject_to) {
        (Some(input), Some(rules), Some(output)) => {
            logging::init(args.apply(Config::default()).log_format());
            // Replay tracks flows only when asked to (--max-flows N).
            let flows = args
                .max_flows
                .filter(|n| *n > 0)
                .map(|n| FlowTable::new(FlowBudget::new(n), Config::default().flow_idle()));
            replay(input, rules, output, flows)
        }
        _ => service::load_config(args.config.as_deref())
            .map(|c| args.apply(c))
            .and_then(|config| {
                logging::init(config.log_format());
                service::run(&args, config)
            })
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tcpresetd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn replay(input: &Path, rules: &Path, output: &Path, flows: Option<FlowTable>) -> Result<()> {
    let s = replay_files::run(input, rules, output, flows)?;
    println!(
        "replayed {} frames ({} not TCP or not parsed, {} matched a rule); wrote {} RSTs to {}",
        s.counters.frames,
        s.counters.skipped,
        s.counters.matched,
        s.rsts,
        output.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transparent_huge_pages_are_off_for_the_daemon() {
        no_transparent_huge_pages();
        assert!(nix::sys::prctl::get_thp_disable().unwrap());
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
            assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
        }
    }

    /// The option index must name the purge delay: a child started with
    /// `MIMALLOC_PURGE_DELAY=1234` reads 1234 back from it.
    #[test]
    fn the_purge_delay_index_names_mimallocs_option() {
        if std::env::var_os("TCPRESETD_MI_CHILD").is_some() {
            // SAFETY: mi_option_get only reads an option value.
            let value = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
            println!("purge_delay={value}");
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::the_purge_delay_index_names_mimallocs_option",
                "--nocapture",
            ])
            .env("TCPRESETD_MI_CHILD", "1")
            .env("MIMALLOC_PURGE_DELAY", "1234")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("purge_delay=1234"), "{stdout}");
    }
}
