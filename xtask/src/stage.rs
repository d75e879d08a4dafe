//! `cargo xtask stage`: every installed file in its final place under a staging directory.
//!
//! This is the one install layout: `scripts/install.sh` copies the staged tree to `/` and
//! `scripts/build-deb.sh` packages it, so both install the same files with the same modes.
//! Binaries are stripped; man pages are gzipped (`man` reads them so everywhere).
use crate::docs;
use anyhow::{bail, ensure, Context, Result};
use flate2::{Compression, GzBuilder};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The released binaries and where they go under the prefix.
const BINARIES: [(&str, &str); 3] = [
    ("tcpresetd", "sbin"),
    ("tcpreset", "bin"),
    ("tcpreset-hunt", "bin"),
];

/// Where to stage.
#[derive(clap::Args)]
pub struct Layout {
    /// The staging directory; it must be new or empty.
    #[arg(long, value_name = "DIR")]
    pub destdir: PathBuf,
    /// The installation prefix. `/usr` puts the unit and the sysusers snippet in the vendor
    /// directories under /usr/lib; any other prefix puts them under /etc.
    #[arg(long, value_name = "DIR", default_value = "/usr")]
    pub prefix: PathBuf,
}

/// Builds the release binaries and writes the tree; returns the number of files staged.
pub fn stage(layout: &Layout) -> Result<usize> {
    let prefix = &layout.prefix;
    ensure!(
        prefix.is_absolute(),
        "--prefix must be an absolute path, not '{}'",
        prefix.display()
    );
    let dest = &layout.destdir;
    if dest.exists() && std::fs::read_dir(dest)?.next().is_some() {
        bail!(
            "{} is not empty; stage into a new directory (or remove it first)",
            dest.display()
        );
    }
    let root = workspace_root();
    let release = build_release(&root)?;
    let mut tree = Tree {
        dest: dest.clone(),
        files: 0,
    };
    let under = |dir: &str| prefix.join(dir);
    for (name, dir) in BINARIES {
        tree.strip_binary(&release.join(name), &under(dir).join(name))?;
    }

    let vendor = prefix == Path::new("/usr");
    let (unit_dir, sysusers_dir) = if vendor {
        ("/usr/lib/systemd/system", "/usr/lib/sysusers.d")
    } else {
        ("/etc/systemd/system", "/etc/sysusers.d")
    };
    let unit = read(&root.join("systemd/tcpresetd.service"))?;
    let exec = format!("ExecStart={}", under("sbin/tcpresetd").display());
    let unit = unit.replace("ExecStart=/usr/sbin/tcpresetd", &exec);
    let unit_path = Path::new(unit_dir).join("tcpresetd.service");
    tree.file(&unit_path, unit.as_bytes(), 0o644)?;
    let sysusers = read(&root.join("systemd/tcpreset.sysusers"))?;
    tree.file(
        &Path::new(sysusers_dir).join("tcpreset.conf"),
        sysusers.as_bytes(),
        0o644,
    )?;
    let config = read(&root.join("config/tcpresetd.toml"))?;
    tree.file(
        Path::new("/etc/tcpreset/tcpresetd.toml"),
        config.as_bytes(),
        0o644,
    )?;

    let doc = under("share/doc/tcpreset");
    tree.file(&doc.join("tcpresetd.toml"), config.as_bytes(), 0o644)?;
    tree.copy(&root.join("README.md"), &doc.join("README.md"), 0o644)?;
    let playbooks = root.join("playbooks");
    for entry in sorted_dir(&playbooks)? {
        let name = entry.file_name().context("a playbook file name")?;
        tree.copy(&entry, &doc.join("examples/playbooks").join(name), 0o644)?;
    }

    let generated =
        std::env::temp_dir().join(format!("tcpreset-xtask-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&generated);
    docs::write(&generated)?;
    let staged = stage_docs(&mut tree, &generated, &under("share"), vendor);
    std::fs::remove_dir_all(&generated)
        .with_context(|| format!("removing {}", generated.display()))?;
    staged?;
    Ok(tree.files)
}

/// The man pages (gzipped, in `man1`/`man8` by their suffix) and the completions.
fn stage_docs(tree: &mut Tree, generated: &Path, share: &Path, vendor: bool) -> Result<()> {
    for page in sorted_dir(&generated.join("man"))? {
        let name = page
            .file_name()
            .and_then(|n| n.to_str())
            .context("a page name")?;
        let section = name.rsplit('.').next().context("a page section")?;
        let mut gz = GzBuilder::new().write(Vec::new(), Compression::best());
        gz.write_all(&std::fs::read(&page)?)?;
        let path = share.join(format!("man/man{section}/{name}.gz"));
        tree.file(&path, &gz.finish()?, 0o644)?;
    }
    // zsh: Debian's fpath has vendor-completions under /usr; site-functions elsewhere.
    let zsh = if vendor {
        "zsh/vendor-completions"
    } else {
        "zsh/site-functions"
    };
    for (shell, dir) in [
        ("bash", "bash-completion/completions"),
        ("zsh", zsh),
        ("fish", "fish/vendor_completions.d"),
    ] {
        for file in sorted_dir(&generated.join("completions").join(shell))? {
            let name = file.file_name().context("a completion file name")?;
            tree.copy(&file, &share.join(dir).join(name), 0o644)?;
        }
    }
    Ok(())
}

/// The staging directory being filled.
struct Tree {
    dest: PathBuf,
    files: usize,
}

impl Tree {
    /// `path` (absolute, as installed) under the staging directory, its parents created.
    fn place(&mut self, path: &Path) -> Result<PathBuf> {
        let target = self.dest.join(path.strip_prefix("/").unwrap_or(path));
        let parent = target.parent().context("a staged path has a parent")?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        self.files += 1;
        Ok(target)
    }

    fn file(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
        let target = self.place(path)?;
        std::fs::write(&target, bytes).with_context(|| format!("writing {}", target.display()))?;
        set_mode(&target, mode)
    }

    fn copy(&mut self, from: &Path, path: &Path, mode: u32) -> Result<()> {
        let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
        self.file(path, &bytes, mode)
    }

    /// The binary without its debug information and symbols, as a package ships it.
    fn strip_binary(&mut self, from: &Path, path: &Path) -> Result<()> {
        let target = self.place(path)?;
        let status = Command::new("strip")
            .arg("--strip-unneeded")
            .arg("-o")
            .arg(&target)
            .arg(from)
            .status()
            .context("running strip (Debian package binutils)")?;
        ensure!(
            status.success(),
            "strip {} failed: {status}",
            from.display()
        );
        set_mode(&target, 0o755)
    }
}

/// `cargo build --release` of the installed binaries; returns the release directory.
fn build_release(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(root)
        .args(["build", "--release", "--locked", "--package", "tcpreset"]);
    for (name, _) in BINARIES {
        build.args(["--bin", name]);
    }
    let status = build.status().context("running cargo build --release")?;
    ensure!(status.success(), "cargo build --release failed: {status}");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(root.join(target).join("release"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ sits in the workspace root")
        .to_path_buf()
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.retain(|p| p.is_file());
    entries.sort();
    Ok(entries)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}
