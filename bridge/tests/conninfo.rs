//! The bridge connects as libpq would: `PG*` variables for what the connection string leaves
//! unset, `postgresql://` URIs, and a password from the password file, which is ignored (with
//! libpq's warning) when others may read it. A real PostgreSQL 15 that asks for a password.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// A role that must give its password (SCRAM) over the cluster's socket.
fn cluster_with_a_password() -> Option<Pg> {
    let pg = Pg::start()?;
    pg.psql("SET password_encryption = 'scram-sha-256'; CREATE ROLE bridge_pw LOGIN PASSWORD 'se:cr\\et'");
    let hba = pg.dir().join("data/pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("local all bridge_pw scram-sha-256\n{old}")).unwrap();
    pg.psql("SELECT pg_reload_conf()");
    Some(pg)
}

fn wait_for_error(h: &Host, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = h.state() {
            if r.get("last_error").contains(needle) && r.get("state") != "connected" {
                return;
            }
            assert_ne!(r.get("state"), "connected", "connected without the password; log:\n{}", h.log());
        }
        assert!(Instant::now() < deadline, "no error {needle:?}; state {:?}; log:\n{}", h.state(), h.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_password_comes_from_the_password_file_and_settings_from_pg_variables() {
    let Some(pg) = cluster_with_a_password() else { return };
    let sock = pg.dir().display().to_string();
    let files = Scratch::new("pgpass");
    let pgpass = files.0.join("pgpass");
    // Fields escape ':' and '\' with a backslash; the first matching line wins.
    std::fs::write(
        &pgpass,
        format!("otherhost:5432:*:bridge_pw:wrong\n{sock}:5432:postgres:bridge_pw:se\\:cr\\\\et\n"),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pgpass_s = pgpass.to_str().unwrap();

    // Without the password: refused, and the state says why.
    let mut h = Host::new("nopw");
    h.start_bridge_with("", &["ev"], &[("PGHOST", &sock), ("PGUSER", "bridge_pw"), ("PGDATABASE", "postgres")]);
    wait_for_error(&h, "password");
    h.kill_bridge();

    // Everything from the environment and the password file.
    let mut h = Host::new("env");
    let env =
        [("PGHOST", sock.as_str()), ("PGUSER", "bridge_pw"), ("PGDATABASE", "postgres"), ("PGPASSFILE", pgpass_s)];
    h.start_bridge_with("", &["ev"], &env);
    h.wait_connected(1);
    let mut l = Listener::new(&h, &["ev"]);
    pg.psql("NOTIFY ev, 'through the password file'");
    assert!(l.until(10, |g| !g.is_empty()), "{}", h.log());
    assert!(h.state().unwrap().get("postgres").contains("user=bridge_pw"));

    // A URI, with the password file.
    let mut u = Host::new("uri");
    let uri = format!("postgresql://bridge_pw@/postgres?host={sock}");
    u.start_bridge_with(&uri, &["ev"], &[("PGPASSFILE", pgpass_s)]);
    u.wait_connected(1);

    // A password file others can read is ignored, with libpq's warning.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut w = Host::new("loose");
    w.start_bridge_with("", &["ev"], &env);
    wait_for_error(&w, "password");
    assert!(w.log().contains("has group or world access; permissions should be u=rw (0600) or less"), "{}", w.log());
}
