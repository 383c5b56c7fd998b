//! `pgvigil --install-links DIR`: a plugin directory without the package.
//! Each program becomes a symbolic link to this binary, relative when the
//! binary sits in DIR (as the package installs it), so the directory can
//! be copied or moved whole.

use std::path::{Path, PathBuf};

use pgvigil::registry;

pub fn install(dir: &Path) -> Result<usize, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let dir_real = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let target: PathBuf = if exe.parent() == Some(dir_real.as_path()) {
        exe.file_name().map(PathBuf::from).unwrap_or(exe.clone())
    } else {
        exe.clone()
    };
    let mut made = 0;
    for entry in registry::all() {
        let link = dir.join(entry.binary);
        match std::fs::symlink_metadata(&link) {
            // Ours from an earlier run (or another version): replaced.
            Ok(meta) if meta.file_type().is_symlink() => {
                std::fs::remove_file(&link).map_err(|e| format!("{}: {e}", link.display()))?
            }
            Ok(_) => {
                return Err(format!(
                    "{} exists and is not a link: left as it is",
                    link.display()
                ))
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&target, &link)
            .map_err(|e| format!("{}: {e}", link.display()))?;
        made += 1;
    }
    Ok(made)
}
