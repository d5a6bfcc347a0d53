//! TLS to PostgreSQL with libpq's `sslmode`s, against a real PostgreSQL 15 on 127.0.0.1 with
//! certificates made here by a throwaway certificate authority (the openssl command): what each
//! mode connects to, whether the connection is encrypted (the server's `pg_stat_ssl` for the
//! bridge's backend), and that a certificate that does not verify leaves the bridge retrying
//! with the reason in `hark stat`. Every bridge gets a home directory of its own, for
//! `~/.postgresql`.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("the openssl command");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A certificate authority `NAME.crt`/`NAME.key` in `dir`.
fn authority(dir: &Path, name: &str) -> PathBuf {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    openssl(
        dir,
        &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", &key]
            .into_iter()
            .chain(["-out", &crt, "-subj", &format!("/CN=hark test {name}"), "-days", "2"])
            .collect::<Vec<_>>(),
    );
    dir.join(crt)
}

/// A certificate `NAME.crt`/`NAME.key` for `cn`, signed by `ca`, with these X.509v3 extensions.
fn certificate(dir: &Path, ca: &str, name: &str, cn: &str, extensions: &str) -> (PathBuf, PathBuf) {
    let (crt, key, csr, ext) =
        (format!("{name}.crt"), format!("{name}.key"), format!("{name}.csr"), format!("{name}.ext"));
    std::fs::write(dir.join(&ext), format!("{extensions}\n")).unwrap();
    let subj = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subj,
        ],
    );
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
    std::fs::set_permissions(dir.join(&key), std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir.join(crt), dir.join(key))
}

/// A cluster with TLS on (or off), its server certificate from `pki` (for `localhost` and
/// 127.0.0.1, signed by `ca`).
fn cluster(ssl: bool, pki: &Path) -> Option<Pg> {
    Pg::start_tcp(|dir| {
        if !ssl {
            return String::new();
        }
        for f in ["server.crt", "server.key", "ca.crt"] {
            std::fs::copy(pki.join(f), dir.join(f)).unwrap();
            give_to_server(&dir.join(f));
        }
        format!("-c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key", dir.display())
    })
}

/// The certificates of these tests, or `None` (with the reason printed) without the openssl
/// command (`make test-bridge` installs it with PostgreSQL).
fn pki() -> Option<Scratch> {
    if !Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: the openssl command is missing (it makes the tests' certificates)");
        return None;
    }
    let s = Scratch::new("pki");
    authority(&s.0, "ca");
    authority(&s.0, "other");
    certificate(&s.0, "ca", "server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1");
    Some(s)
}

/// A home directory, with `~/.postgresql/root.crt` when given.
fn home(root_crt: Option<&Path>) -> Scratch {
    let h = Scratch::new("home");
    if let Some(crt) = root_crt {
        std::fs::create_dir(h.0.join(".postgresql")).unwrap();
        std::fs::copy(crt, h.0.join(".postgresql/root.crt")).unwrap();
    }
    h
}

fn bridge(name: &str, conninfo: &str, home: &Scratch) -> Host {
    bridge_with(name, conninfo, home, &[])
}

fn bridge_with(name: &str, conninfo: &str, home: &Scratch, env: &[(&str, &str)]) -> Host {
    let mut h = Host::new(name);
    let mut env = env.to_vec();
    env.push(("HOME", home.0.to_str().unwrap()));
    h.start_bridge_with(conninfo, &["ev"], &env);
    h
}

/// Whether the server sees the bridge's backend on TLS ("t") or not ("f").
fn ssl_of(pg: &Pg, h: &Host) -> String {
    let pid = h.state().unwrap().get("pg_backend_pid").to_owned();
    pg.psql(&format!("SELECT ssl FROM pg_stat_ssl WHERE pid = {pid}")).trim().to_owned()
}

/// Waits until the bridge's state shows an error containing every one of `needles`, and it
/// never connected; then checks that it keeps trying (it is alive, and has tried again).
fn wait_for_error(h: &mut Host, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let error = loop {
        if let Some(r) = h.state() {
            assert_eq!(r.get("connects"), "0", "connected; log:\n{}", h.log());
            let e = r.get("last_error");
            if r.get("state") == "disconnected" && needles.iter().all(|n| e.contains(n)) {
                break e.to_owned();
            }
        }
        assert!(Instant::now() < deadline, "no error {needles:?}; state {:?}; log:\n{}", h.state(), h.log());
        std::thread::sleep(Duration::from_millis(20));
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.log().matches("could not connect to PostgreSQL").count() < 3 {
        assert!(Instant::now() < deadline, "no retry; log:\n{}", h.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(h.bridge.as_mut().unwrap().try_wait().unwrap().is_none(), "the bridge ended; log:\n{}", h.log());
    let r = h.state().unwrap();
    assert_eq!((r.get("state"), r.get("connects")), ("disconnected", "0"));
    eprintln!("{}: {error}", h.name);
    error
}

fn hark_stat(h: &Host) -> String {
    let out = Command::new(hark_bin()).arg("stat").arg(h.queue()).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn each_mode_connects_as_libpq_would_and_verified_tls_carries_both_ways() {
    let Some(pki) = pki() else { return };
    let Some(pg) = cluster(true, &pki.0) else { return };
    let tcp = format!("host=localhost port={} user=postgres dbname=postgres", pg.port);
    let ca = pki.0.join("ca.crt");
    let (empty, wrong_root) = (home(None), home(Some(&pki.0.join("other.crt"))));

    // require without a root certificate: encrypted, nothing verified.
    let mut a = bridge("require", &format!("{tcp} sslmode=require"), &empty);
    // verify-full with the right authority and host name.
    let mut b = bridge("full", &format!("{tcp} sslmode=verify-full sslrootcert={}", ca.display()), &empty);
    // verify-ca checks the chain only: another host name is fine.
    let c = bridge("ca", &format!("host=elsewhere.example hostaddr=127.0.0.1 port={} user=postgres dbname=postgres sslmode=verify-ca sslrootcert={}", pg.port, ca.display()), &empty);
    // prefer, the default (a URI, as PGSSLMODE would not be set): TLS when the server has it.
    let d = bridge("prefer", &format!("postgresql://postgres@localhost:{}/postgres", pg.port), &empty);
    let e = bridge("disable", &format!("{tcp} sslmode=disable"), &empty);
    // prefer with a root certificate that does not verify the server: libpq falls back to plain.
    let f = bridge("prefer-fallback", &format!("{tcp} sslmode=prefer"), &wrong_root);
    // The system's roots (moved to the test's authority by SSL_CERT_FILE, as OpenSSL's are):
    // verify-full without saying so.
    let g =
        bridge_with("system", &format!("{tcp} sslrootcert=system"), &empty, &[("SSL_CERT_FILE", ca.to_str().unwrap())]);
    for h in [&a, &b, &c, &d, &e, &f, &g] {
        h.wait_connected(1);
    }
    let got: Vec<String> = [&a, &b, &c, &d, &e, &f, &g].iter().map(|h| ssl_of(&pg, h)).collect();
    assert_eq!(
        got,
        ["t", "t", "t", "t", "f", "f", "t"],
        "require, verify-full, verify-ca, prefer, disable, prefer-fallback, system"
    );
    assert!(g.state().unwrap().get("postgres").ends_with("sslmode=verify-full"));
    assert!(a.state().unwrap().get("postgres").ends_with("sslmode=require"));

    // Notifications both ways over the verified connection, and from psql.
    let mut la = Listener::new(&a, &["ev"]);
    let mut lb = Listener::new(&b, &["ev"]);
    let mut ca_conn = a.connect();
    ca_conn.notify("ev", "from a").unwrap();
    let mut cb_conn = b.connect();
    cb_conn.notify("ev", "from b").unwrap();
    pg.psql("NOTIFY ev, 'from psql'");
    let all = |got: &[(String, String, i32)]| got.len() >= 3;
    assert!(la.until(20, all), "a got {:?}; log:\n{}", la.got, a.log());
    assert!(lb.until(20, all), "b got {:?}; log:\n{}", lb.got, b.log());
    let mut pa = la.payloads("ev");
    let mut pb = lb.payloads("ev");
    pa.sort();
    pb.sort();
    assert_eq!(pa, ["from a", "from b", "from psql"]);
    assert_eq!(pb, ["from a", "from b", "from psql"]);
    a.kill_bridge();
    b.kill_bridge();
}

#[test]
fn a_certificate_that_does_not_verify_is_reported_and_retried_never_fatal() {
    let Some(pki) = pki() else { return };
    let Some(pg) = cluster(true, &pki.0) else { return };
    let tcp = format!("host=localhost port={} user=postgres dbname=postgres", pg.port);
    let (empty, wrong_root) = (home(None), home(Some(&pki.0.join("other.crt"))));

    // The wrong authority: the bridge says which mode, which file and why, and keeps trying.
    let roots = Scratch::new("roots");
    let root = roots.0.join("root.crt");
    std::fs::copy(pki.0.join("other.crt"), &root).unwrap();
    let mut wrong_ca = bridge("wrong-ca", &format!("{tcp} sslmode=verify-full sslrootcert={}", root.display()), &empty);
    let e =
        wait_for_error(&mut wrong_ca, &["sslmode=verify-full", "not signed by a certificate authority in", "root.crt"]);
    let stat = hark_stat(&wrong_ca);
    assert!(stat.contains(&format!("last error {e}")) && stat.contains("next attempt in"), "{stat}");
    // The file is read at each attempt: with the right authority in it, the bridge connects.
    std::fs::copy(pki.0.join("ca.crt"), &root).unwrap();
    wrong_ca.wait_connected(1);
    assert_eq!(ssl_of(&pg, &wrong_ca), "t");

    // The wrong host name.
    let conninfo = format!(
        "host=elsewhere.example hostaddr=127.0.0.1 port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
        pg.port,
        pki.0.join("ca.crt").display()
    );
    let mut wrong_name = bridge("wrong-name", &conninfo, &empty);
    wait_for_error(
        &mut wrong_name,
        &[
            "sslmode=verify-full",
            "certificate for \"localhost\", \"127.0.0.1\" does not match host name \"elsewhere.example\"",
        ],
    );

    // require with a root certificate in ~/.postgresql verifies the chain, as libpq.
    let mut require = bridge("require-root", &format!("{tcp} sslmode=require"), &wrong_root);
    wait_for_error(&mut require, &["sslmode=require", "not signed by a certificate authority"]);

    // verify-full without any root certificate.
    let mut no_root = bridge("no-root", &format!("{tcp} sslmode=verify-full"), &empty);
    let missing = empty.0.join(".postgresql/root.crt");
    wait_for_error(&mut no_root, &[&format!("root certificate file \"{}\" does not exist", missing.display())]);

    // A server certificate that names its host in the subject's common name only: libpq takes
    // the common name then (for host names, and for addresses), rustls alone would not.
    certificate(&pki.0, "ca", "cn-only", "localhost", "basicConstraints=CA:FALSE");
    for (from, to) in [("cn-only.crt", "server.crt"), ("cn-only.key", "server.key")] {
        std::fs::copy(pki.0.join(from), pg.dir().join(to)).unwrap();
    }
    pg.psql("SELECT pg_reload_conf()");
    let full = |host: &str| {
        format!(
            "host={host} port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
            pg.port,
            pki.0.join("ca.crt").display()
        )
    };
    let by_cn = bridge("by-cn", &full("localhost"), &empty);
    by_cn.wait_connected(1);
    assert_eq!(ssl_of(&pg, &by_cn), "t");
    let mut by_address = bridge("by-address", &full("127.0.0.1"), &empty);
    wait_for_error(&mut by_address, &["sslmode=verify-full", "its common name does not match host name \"127.0.0.1\""]);

    // A self-signed server certificate (marked as an authority, as `openssl req -x509` makes
    // it) trusted as it is, by being the root file: libpq takes it, and checks its name.
    let subj_alt = "subjectAltName=DNS:localhost";
    openssl(
        &pki.0,
        &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            .into_iter()
            .chain([
                "-keyout",
                "self.key",
                "-out",
                "self.crt",
                "-subj",
                "/CN=localhost",
                "-addext",
                subj_alt,
                "-days",
                "2",
            ])
            .collect::<Vec<_>>(),
    );
    for (from, to) in [("self.crt", "server.crt"), ("self.key", "server.key")] {
        std::fs::copy(pki.0.join(from), pg.dir().join(to)).unwrap();
    }
    pg.psql("SELECT pg_reload_conf()");
    let trusted = |host: &str| {
        format!(
            "host={host} port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
            pg.port,
            pki.0.join("self.crt").display()
        )
    };
    let self_signed = bridge("self-signed", &trusted("localhost"), &empty);
    self_signed.wait_connected(1);
    let mut self_signed_by_address = bridge("self-signed-by-address", &trusted("127.0.0.1"), &empty);
    wait_for_error(&mut self_signed_by_address, &["for \"localhost\" does not match host name \"127.0.0.1\""]);
    let mut other_ca = bridge(
        "self-signed-other",
        &format!("{tcp} sslmode=verify-ca sslrootcert={}", pki.0.join("ca.crt").display()),
        &empty,
    );
    wait_for_error(&mut other_ca, &["sslmode=verify-ca", "is an authority's (self-signed?) and is not itself in root"]);
}

#[test]
fn without_tls_on_the_server_prefer_goes_plain_and_require_refuses() {
    let Some(pg) = cluster(false, Path::new("/nonexistent")) else { return };
    let tcp = format!("host=localhost port={} user=postgres dbname=postgres", pg.port);
    let empty = home(None);
    let prefer = bridge("prefer", &tcp, &empty);
    prefer.wait_connected(1);
    assert_eq!(ssl_of(&pg, &prefer), "f");
    let mut require = bridge("require", &format!("{tcp} sslmode=require"), &empty);
    wait_for_error(
        &mut require,
        &["sslmode=require: the server at localhost does not support SSL, but SSL was required"],
    );
    // A Unix socket never carries TLS, whatever the mode (the server has none there), as libpq.
    let socket = bridge("socket", &format!("{} sslmode=verify-full", pg.conninfo), &empty);
    socket.wait_connected(1);
}

#[test]
fn a_server_that_requires_tls_refuses_disable_and_takes_client_certificates() {
    let Some(pki) = pki() else { return };
    let (client_crt, client_key) = certificate(&pki.0, "ca", "client", "certuser", "basicConstraints=CA:FALSE");
    let Some(pg) = cluster(true, &pki.0) else { return };
    let hba = pg.dir().join("data/pg_hba.conf");
    std::fs::write(
        &hba,
        "local all all trust\nhostssl all certuser 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    pg.psql("CREATE ROLE certuser LOGIN");
    pg.psql(&format!("ALTER SYSTEM SET ssl_ca_file = '{}'", pg.dir().join("ca.crt").display()));
    pg.psql("SELECT pg_reload_conf()");
    let tcp = |user: &str| format!("host=localhost port={} user={user} dbname=postgres", pg.port);
    let empty = home(None);

    // hostssl only: disable is refused by the server, with its message and SQLSTATE.
    let mut disable = bridge("disable", &format!("{} sslmode=disable", tcp("postgres")), &empty);
    wait_for_error(&mut disable, &["no pg_hba.conf entry for host \"127.0.0.1\"", "no encryption", "28000"]);
    // allow tries plain, is refused, and tries TLS.
    let allow = bridge("allow", &format!("{} sslmode=allow", tcp("postgres")), &empty);
    allow.wait_connected(1);
    assert_eq!(ssl_of(&pg, &allow), "t");

    // A client certificate, from the string.
    let with_cert = format!(
        "{} sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
        tcp("certuser"),
        pki.0.join("ca.crt").display(),
        client_crt.display(),
        client_key.display()
    );
    let certified = bridge("cert", &with_cert, &empty);
    certified.wait_connected(1);
    assert_eq!(
        pg.psql(&format!(
            "SELECT client_dn FROM pg_stat_ssl WHERE pid = {}",
            certified.state().unwrap().get("pg_backend_pid")
        ))
        .trim(),
        "/CN=certuser"
    );
    // From ~/.postgresql, the default place.
    let home_cert = home(Some(&pki.0.join("ca.crt")));
    std::fs::copy(&client_crt, home_cert.0.join(".postgresql/postgresql.crt")).unwrap();
    std::fs::copy(&client_key, home_cert.0.join(".postgresql/postgresql.key")).unwrap();
    let from_home = bridge("cert-home", &format!("{} sslmode=verify-full", tcp("certuser")), &home_cert);
    from_home.wait_connected(1);

    // Without one, the server refuses.
    let mut without = bridge("no-cert", &format!("{} sslmode=require", tcp("certuser")), &empty);
    wait_for_error(&mut without, &["certificate"]);
    // A key others may read is refused before connecting, with libpq's message.
    std::fs::set_permissions(&client_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut loose = bridge("loose-key", &with_cert, &empty);
    wait_for_error(
        &mut loose,
        &["sslmode=verify-full", "has group or world access; file must have permissions u=rw (0600) or less"],
    );
}
