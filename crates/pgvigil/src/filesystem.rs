//! Filesystem facts for paths the server reports: which filesystem holds a
//! path, where it is mounted, and how full it is.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub total: f64,
    pub used: f64,
    /// Free to unprivileged users, as df counts it (root's reserve excluded).
    pub available: f64,
}

impl Usage {
    /// Percent used as df shows it: used / (used + available).
    pub fn percent_used(&self) -> f64 {
        let usable = self.used + self.available;
        if usable > 0.0 {
            self.used * 100.0 / usable
        } else {
            0.0
        }
    }
}

pub fn usage(path: &Path) -> io::Result<Usage> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: statvfs writes into the zeroed struct we own; we read it only on success.
    let stat = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut stat) != 0 {
            return Err(io::Error::last_os_error());
        }
        stat
    };
    let block = stat.f_frsize as f64;
    Ok(Usage {
        total: stat.f_blocks as f64 * block,
        used: (stat.f_blocks - stat.f_bfree) as f64 * block,
        available: stat.f_bavail as f64 * block,
    })
}

/// The device a path lives on, to tell filesystems apart.
pub fn device(path: &Path) -> io::Result<u64> {
    Ok(std::fs::metadata(path)?.dev())
}

/// The mount point of the filesystem holding `path`: the highest ancestor on the same device.
pub fn mount_point(path: &Path) -> PathBuf {
    let Ok(dev) = device(path) else {
        return path.to_path_buf();
    };
    let mut top = path.to_path_buf();
    for ancestor in path.ancestors().skip(1) {
        match device(ancestor) {
            Ok(d) if d == dev => top = ancestor.to_path_buf(),
            _ => break,
        }
    }
    top
}

/// True when `host` names this machine: a socket directory, a loopback
/// address, or an address of one of its interfaces.
pub fn is_local_host(host: &str) -> bool {
    use std::net::ToSocketAddrs;
    if host.starts_with('/') || host == "localhost" {
        return true;
    }
    let Ok(addrs) = (host, 0).to_socket_addrs() else {
        return false;
    };
    let local = interface_addresses();
    addrs
        .map(|a| a.ip())
        .any(|ip| ip.is_loopback() || local.contains(&ip))
}

fn interface_addresses() -> Vec<std::net::IpAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let mut found = Vec::new();
    // SAFETY: we walk the list getifaddrs returns and free it once.
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut list) != 0 {
            return found;
        }
        let mut cursor = list;
        while !cursor.is_null() {
            let addr = (*cursor).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        found.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        found.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cursor = (*cursor).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    found
}

/// The login name of user `uid`, from the system's user database.
pub fn user_name(uid: u32) -> Option<String> {
    // SAFETY: getpwuid_r fills our buffer; we read the name only on success.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name);
        Some(name.to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_filesystem_has_sane_usage() {
        let u = usage(Path::new("/")).unwrap();
        assert!(u.total > 0.0 && u.used <= u.total && u.available <= u.total);
        assert!((0.0..=100.0).contains(&u.percent_used()));
    }

    #[test]
    fn missing_path_is_an_error() {
        assert!(usage(Path::new("/no/such/path/here")).is_err());
    }

    #[test]
    fn mount_point_of_root_is_root() {
        assert_eq!(mount_point(Path::new("/")), PathBuf::from("/"));
    }

    #[test]
    fn loopback_and_sockets_are_local() {
        assert!(is_local_host("/var/run/postgresql"));
        assert!(is_local_host("127.0.0.1"));
        assert!(is_local_host("::1"));
        assert!(!is_local_host("192.0.2.1"), "TEST-NET address is not ours");
    }
}
