//! The egress policy: URL, allowlist and address checks (no I/O).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::{Result, Unstructured};
use runtime_core::host::http::policy::{EgressPolicy, TargetHost, parse_allowlist};

/// Address prefixes guests aim at (loopback, private, link-local and metadata,
/// embedded IPv4 forms), so structured inputs hit the rules' edges.
const V4_PREFIXES: &[[u8; 2]] = &[
    [127, 0],
    [10, 0],
    [169, 254],
    [172, 16],
    [172, 31],
    [192, 168],
    [100, 64],
    [0, 0],
    [224, 0],
    [255, 255],
    [8, 8],
    [93, 184],
];
const V6_PREFIXES: &[[u16; 2]] = &[
    [0, 0],
    [0xfe80, 0],
    [0xfc00, 0],
    [0xfd00, 0xec2],
    [0x64, 0xff9b],
    [0x2002, 0x7f00],
    [0x2002, 0x0808],
    [0xff02, 0],
    [0x2606, 0x4700],
    [0x2001, 0],
];

/// The first byte picks the mode: 0 the rest is text, lines of allowlist, URL and
/// resolved addresses; otherwise the rest chooses an address, spells it in a URL
/// (dotted, integer, hex, octal, IPv6, mapped) and may allowlist that spelling.
/// Whatever the policy lets through never reaches a loopback, private,
/// link-local (cloud metadata included), unspecified, multicast or broadcast
/// address, also when embedded in IPv6 (mapped, compatible, NAT64, 6to4); a URL
/// let through is http(s) without credentials and its host is allowlisted; the
/// allowlist's canonical form is a fixed point.
pub fn egress(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (allowlist, url, addrs) = if mode == 0 {
        let text = String::from_utf8_lossy(rest);
        let mut lines = text.lines();
        let allowlist = lines.next().unwrap_or_default().to_string();
        let url = lines.next().unwrap_or_default().to_string();
        let addrs = lines.filter_map(|l| l.trim().parse().ok()).collect();
        (allowlist, url, addrs)
    } else {
        match structured(&mut Unstructured::new(rest)) {
            Ok(input) => input,
            Err(_) => return,
        }
    };
    check(&allowlist, &url, &addrs);
}

fn check(allowlist: &str, url: &str, addrs: &[IpAddr]) {
    let canonical = parse_allowlist(allowlist);
    assert_eq!(
        parse_allowlist(&canonical.join(",")),
        canonical,
        "{allowlist:?}"
    );
    let policy = EgressPolicy::new(allowlist.split(','), &[]);
    assert_eq!(policy.allowlist(), canonical.as_slice());

    for ip in addrs {
        if policy.check_addr(*ip).is_ok() {
            assert!(!internal(*ip), "check_addr let {ip} through");
        }
    }
    if policy.check_addrs(addrs).is_ok() {
        assert!(!addrs.is_empty() && !addrs.iter().any(|ip| internal(*ip)));
    }

    let Ok(target) = policy.check_url(url) else {
        return;
    };
    assert!(matches!(target.url.scheme(), "http" | "https"), "{url:?}");
    assert!(target.url.username().is_empty() && target.url.password().is_none());
    if let TargetHost::Ip(ip) = target.host {
        assert!(!internal(ip), "check_url let {url:?} ({ip}) through");
    }
    let name = target.host.name();
    assert!(
        canonical
            .iter()
            .any(|entry| covers(entry, &name, target.port)),
        "{url:?} ({name}:{}) is not in {canonical:?}",
        target.port
    );
}

/// Whether the canonical allowlist `entry` covers `host` on `port`: the same
/// address, or the same domain or a subdomain of it; the entry's port if it names one.
fn covers(entry: &str, host: &str, port: u16) -> bool {
    let (entry_host, entry_port) = match entry.strip_prefix('[') {
        Some(rest) => {
            let (h, p) = rest.split_once("]:").expect("[v6]:port");
            (h, p.parse::<u16>().ok())
        }
        None => match entry.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p.parse::<u16>().ok()),
            _ => (entry, None),
        },
    };
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return entry_host.parse::<IpAddr>() == Ok(ip);
    }
    host == entry_host || host.ends_with(&format!(".{entry_host}"))
}

/// The oracle: addresses a guest must never reach, written from the standard
/// library's classifications and the IPv4 an IPv6 address routes to.
fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let tail = Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32);
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6.to_ipv4_mapped().is_some_and(internal_v4)
                // IPv4-compatible (`::a.b.c.d`) and NAT64 (`64:ff9b::/96`).
                || (s[..6] == [0; 6] && internal_v4(tail))
                || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && internal_v4(tail))
                // 6to4: `2002:AABB:CCDD::/48` routes to AA.BB.CC.DD.
                || (s[0] == 0x2002
                    && internal_v4(Ipv4Addr::from(((s[1] as u32) << 16) | s[2] as u32)))
        }
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        // Carrier-grade NAT (100.64.0.0/10): internal to the provider's network.
        || (a == 100 && (64..128).contains(&b))
}

fn structured(u: &mut Unstructured<'_>) -> Result<(String, String, Vec<IpAddr>)> {
    let ip = address(u)?;
    let host = spell(u, ip)?;
    let scheme = *u.choose(&["http", "https", "ftp", "HTTP"])?;
    let userinfo = if u.ratio(1, 8)? { "user@" } else { "" };
    let port = if u.ratio(1, 3)? {
        format!(":{}", u.arbitrary::<u16>()?)
    } else {
        String::new()
    };
    let url = format!("{scheme}://{userinfo}{host}{port}/path");
    let mut allowlist = Vec::new();
    if u.ratio(3, 4)? {
        allowlist.push(if u.ratio(1, 2)? {
            host.clone()
        } else {
            ip.to_string()
        });
    }
    if u.ratio(1, 4)? {
        allowlist.push(u.arbitrary::<String>()?);
    }
    let mut addrs = vec![ip];
    if u.ratio(1, 2)? {
        addrs.push(address(u)?);
    }
    Ok((allowlist.join(","), url, addrs))
}

/// An address, usually under one of the interesting prefixes.
fn address(u: &mut Unstructured<'_>) -> Result<IpAddr> {
    Ok(if u.ratio(1, 2)? {
        let mut o: [u8; 4] = u.arbitrary()?;
        if u.ratio(3, 4)? {
            o[..2].copy_from_slice(u.choose(V4_PREFIXES)?);
        }
        IpAddr::V4(Ipv4Addr::from(o))
    } else {
        let mut s: [u16; 8] = u.arbitrary()?;
        if u.ratio(3, 4)? {
            s[..2].copy_from_slice(u.choose(V6_PREFIXES)?);
            match u.int_in_range(0..=3)? {
                0 => s[2..6].copy_from_slice(&[0, 0, 0, 0xffff]),
                1 => s[2..6].copy_from_slice(&[0; 4]),
                _ => {}
            }
        }
        IpAddr::V6(Ipv6Addr::from(s))
    })
}

/// `ip` as a URL host, in one of the spellings WHATWG URL parsing accepts.
fn spell(u: &mut Unstructured<'_>, ip: IpAddr) -> Result<String> {
    Ok(match ip {
        IpAddr::V4(v4) => {
            let n = u32::from(v4);
            let [a, b, c, d] = v4.octets();
            match u.int_in_range(0..=5)? {
                0 => n.to_string(),
                1 => format!("0x{n:x}"),
                2 => format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
                3 => format!("{a}.{}", n & 0xff_ffff),
                4 => format!("[::ffff:{v4}]"),
                _ => v4.to_string(),
            }
        }
        IpAddr::V6(v6) => match (u.ratio(1, 2)?, v6.to_ipv4_mapped()) {
            (true, Some(v4)) => format!("[::ffff:{v4}]"),
            _ => format!("[{v6}]"),
        },
    })
}
