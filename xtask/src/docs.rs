//! The man pages and shell completions of `tcpreset`, `tcpresetd` and `tcpreset-hunt`,
//! generated from their clap definitions: `cargo xtask docs OUT_DIR`.
//!
//! `OUT_DIR/man/` gets `tcpreset.1` (and `tcpreset-VERB.1`), `tcpresetd.8`, `tcpreset-hunt.1`
//! (and `tcpreset-hunt-VERB.1`); `OUT_DIR/completions/{bash,zsh,fish}/` one file per program,
//! named as each shell looks it up (`tcpreset`, `_tcpreset`, `tcpreset.fish`).
use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use std::path::Path;
use tcpreset::cli::{self, daemon::DaemonArgs, hunt::HuntArgs};

const DAEMON_FILES: &str = "\
/etc/tcpreset/tcpresetd.toml   configuration; every key is optional (see the shipped example)
/run/tcpreset/tcpresetd.sock   control socket, mode 0660, group socket_group (tcpreset)
/var/lib/tcpreset/rules.json   the rules, saved on every change and restored on start";

const DAEMON_SIGNALS: &str = "\
SIGTERM, SIGINT   stop: captures closed, socket removed, state already on disk
SIGHUP            re-read the configuration (a bad file is logged, the old one kept); rules stay";

const DAEMON_SYSTEMD: &str = "\
tcpresetd.service runs it as user tcpresetd, group tcpreset, with only CAP_NET_RAW and
CAP_NET_ADMIN. It reports readiness (READY=1) and pings the watchdog at half of WatchdogSec.
Members of group tcpreset may register resets: usermod -aG tcpreset USER";

/// Completion files: the shell, its directory under `completions/`, and the file name's affixes.
pub const SHELLS: [(Shell, &str, &str, &str); 3] = [
    (Shell::Bash, "bash", "", ""),
    (Shell::Zsh, "zsh", "_", ""),
    (Shell::Fish, "fish", "", ".fish"),
];

/// Writes `out/man/*.{1,8}` and `out/completions/{bash,zsh,fish}/*`.
pub fn write(out: &Path) -> Result<()> {
    let man = out.join("man");
    std::fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    write_client_pages(&man)?;
    write_daemon_page(&man)?;
    clap_mangen::generate_to(HuntArgs::command().version(version()), &man)
        .context("writing the tcpreset-hunt man pages")?;
    for (shell, dir, prefix, suffix) in SHELLS {
        let dir = out.join("completions").join(dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for mut cmd in [cli::command(), DaemonArgs::command(), HuntArgs::command()] {
            let name = cmd.get_name().to_owned();
            let path = dir.join(format!("{prefix}{name}{suffix}"));
            let mut file = std::fs::File::create(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            clap_complete::generate(shell, &mut cmd, &name, &mut file);
        }
    }
    Ok(())
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// `tcpreset.1` plus one page per verb. The main page ends with the client's own help text, in
/// no-fill mode: it shows the verb-less line playbooks use, which clap cannot express.
fn write_client_pages(dir: &Path) -> Result<()> {
    let cmd = cli::command().version(version());
    clap_mangen::generate_to(cmd.clone(), dir).context("writing the tcpreset man pages")?;
    let man = Man::new(cmd);
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    page.extend(literal_section("COMMAND LINE", &cli::help()).bytes());
    page.extend(literal_section("SEE ALSO", "tcpresetd(8), tcpreset-hunt(1)").bytes());
    write_file(&dir.join(man.get_filename()), &page)
}

/// `tcpresetd.8`: the options, then files, signals and systemd.
fn write_daemon_page(dir: &Path) -> Result<()> {
    let man = Man::new(DaemonArgs::command().version(version())).section("8");
    let mut page = Vec::new();
    man.render(&mut page)?;
    for (title, text) in [
        ("FILES", DAEMON_FILES),
        ("SIGNALS", DAEMON_SIGNALS),
        ("SYSTEMD", DAEMON_SYSTEMD),
        ("SEE ALSO", "tcpreset(1), tcpreset-hunt(1)"),
    ] {
        page.extend(literal_section(title, text).bytes());
    }
    write_file(&dir.join(man.get_filename()), &page)
}

/// A man page section whose text is shown as written (no filling), escaped for troff.
fn literal_section(title: &str, text: &str) -> String {
    let mut roff = format!(".SH \"{title}\"\n.nf\n");
    for line in text.lines() {
        let line = line.replace('\\', "\\e").replace('-', "\\-");
        if line.starts_with(['.', '\'']) {
            roff.push_str("\\&");
        }
        roff.push_str(&line);
        roff.push('\n');
    }
    roff.push_str(".fi\n");
    roff
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
