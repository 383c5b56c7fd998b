//! A small tmpfs of a test's own, to fill for real, and df's view of a path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Mounted at a temp dir, unmounted however the test ends.
pub struct SmallFs(pub PathBuf);

impl SmallFs {
    pub fn mount(megabytes: u32) -> SmallFs {
        let dir = crate::temp_dir("small-fs");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={megabytes}m,mode=0777"))
            .arg("pgvigil-small")
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mounting a tmpfs at {} needs root", dir.display());
        SmallFs(dir)
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// df's view of the filesystem holding `path`: (mount point, used bytes, size bytes).
pub fn df(path: &Path) -> (String, f64, f64) {
    let out = Command::new("df")
        .args(["-B1", "--output=target,used,size"])
        .arg(path)
        .output()
        .expect("df");
    let text = String::from_utf8(out.stdout).unwrap();
    let fields: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    (
        fields[0].to_string(),
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
    )
}
