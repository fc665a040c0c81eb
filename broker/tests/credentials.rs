//! Hashed passwords end to end: `hearth-broker passwd` writes the file, the broker checks logins
//! against it over TCP (mosquitto_pub and rumqttc), and no password ever reaches the logs.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hearth_broker::{BrokerConfig, Password, PasswordFile};
use hearth_testkit::{
    BrokerProcess, Subscriber, TestClient, broker_config, mosquitto_pub, require_tool, start_broker,
};

const WAIT: Duration = Duration::from_secs(5);

fn broker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearth-broker"))
}

/// `hearth-broker passwd <args>` with `stdin` piped in (so it is not a terminal).
/// `hearth-broker passwd <flags> FILE <rest>` with `stdin` piped in (empty:
/// an immediate end of input, as for a command run without a terminal).
fn passwd(flags: &[&str], file: &Path, rest: &[&str], stdin: &str) -> Output {
    let mut child = broker()
        .arg("passwd")
        .args(flags)
        .arg(file)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child may exit before reading (a usage error): a broken pipe
    // here is not the failure under test, its exit status is.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn passwd_adds_changes_and_deletes_users_like_mosquitto_passwd() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwd");

    // Batch mode works and warns about shell history.
    let out = passwd(&["-b"], &file, &[], "");
    assert!(!out.status.success(), "-b without USER PASSWORD must fail");
    let out = passwd(&["-b"], &file, &["hub", "batch-Secret-1"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("shell history"), "{}", stderr(&out));

    // Not a terminal: one line from stdin, no flag needed; --stdin says it explicitly.
    let out = passwd(&[], &file, &[], "piped-Secret-2\n");
    assert!(!out.status.success(), "USER is required");
    let out = passwd(&[], &file, &["pi-1"], "piped-Secret-2\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("added user pi-1"), "{}", stderr(&out));
    let out = passwd(&["--stdin"], &file, &["ha"], "piped-Secret-3\r\n");
    assert!(out.status.success(), "{}", stderr(&out));

    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for (line, user) in lines.iter().zip(["ha", "hub", "pi-1"]) {
        assert!(
            line.starts_with(&format!("{user}:$argon2id$v=19$m=19456,t=2,p=1$")),
            "{line}"
        );
    }
    for secret in ["batch-Secret-1", "piped-Secret-2", "piped-Secret-3"] {
        assert!(!text.contains(secret), "a password is stored in clear");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the password file is private");
    }

    // Changing a password replaces the hash; deleting removes the line.
    let out = passwd(&["-b"], &file, &["hub", "changed-Secret-4"], "");
    assert!(
        stderr(&out).contains("updated user hub"),
        "{}",
        stderr(&out)
    );
    assert_ne!(std::fs::read_to_string(&file).unwrap(), text);
    let out = passwd(&["-D"], &file, &["ha"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = passwd(&["-D"], &file, &["ha"], "");
    assert!(!out.status.success(), "deleted twice: {}", stderr(&out));
    assert!(
        stderr(&out).contains("\"ha\" is not in the password file"),
        "{}",
        stderr(&out)
    );
    let users: Vec<String> = PasswordFile::load(&file)
        .unwrap()
        .users()
        .map(|(u, _)| u.to_owned())
        .collect();
    assert_eq!(users, ["hub", "pi-1"]);

    // Bad input: a user name with ':' and an empty password change nothing.
    let before = std::fs::read_to_string(&file).unwrap();
    let out = passwd(&["-b"], &file, &["a:b", "pw"], "");
    assert!(!out.status.success(), "a user with ':' was accepted");
    assert!(stderr(&out).contains("\"a:b\""), "{}", stderr(&out));
    let out = passwd(&[], &file, &[], "\n");
    assert!(!out.status.success(), "an empty password was accepted");
    let out = passwd(&[], &file, &["x"], "");
    assert!(!out.status.success(), "empty stdin must not set a password");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}

/// `script` gives the command a real terminal, as a person typing would.
#[test]
fn passwd_on_a_terminal_asks_twice_without_echo() {
    require_tool("script");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwd");
    let run = |typed: &str| {
        let command = format!(
            "{} passwd {} hub",
            env!("CARGO_BIN_EXE_hearth-broker"),
            file.display()
        );
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Type each line only once the prompt is there, as a person would.
        let mut stdout = child.stdout.take().unwrap();
        let mut screen = Vec::new();
        for line in typed.lines() {
            let deadline = Instant::now() + WAIT;
            let prompts = screen.windows(2).filter(|w| w == b": ").count();
            let mut buf = [0u8; 256];
            while screen.windows(2).filter(|w| w == b": ").count() == prompts {
                assert!(Instant::now() < deadline, "no prompt: {screen:?}");
                let n = stdout.read(&mut buf).unwrap();
                assert!(
                    n > 0,
                    "script ended early: {}",
                    String::from_utf8_lossy(&screen)
                );
                screen.extend_from_slice(&buf[..n]);
            }
            // rpassword prints the prompt, then turns echo off: give it
            // the moment a person's reaction time would.
            std::thread::sleep(Duration::from_millis(300));
            stdin.write_all(format!("{line}\r").as_bytes()).unwrap();
        }
        drop(stdin);
        stdout.read_to_end(&mut screen).unwrap();
        let status = child.wait().unwrap();
        (
            status.success(),
            String::from_utf8_lossy(&screen).into_owned(),
        )
    };
    let (ok, screen) = run("tty-Secret-5\ntty-Secret-5\n");
    assert!(ok, "{screen}");
    assert!(screen.contains("Password for hub"), "{screen}");
    assert!(screen.contains("Reenter password"), "{screen}");
    assert!(
        !screen.contains("tty-Secret-5"),
        "the password was echoed: {screen}"
    );
    let users = PasswordFile::load(&file).unwrap();
    let names: Vec<&str> = users.users().map(|(u, _)| u).collect();
    assert!(users.contains("hub"), "hub not in {names:?}");

    let before = std::fs::read_to_string(&file).unwrap();
    let (ok, screen) = run("first-Secret\nsecond-Secret\n");
    assert!(!ok, "{screen}");
    assert!(screen.contains("do not match"), "{screen}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
}

fn password_file(dir: &Path, users: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("passwd");
    let mut file = PasswordFile::default();
    for (user, password) in users {
        file.set(user, password).unwrap();
    }
    file.save(&path).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_and_plain_users_log_in_over_tcp_and_nobody_else() {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig {
        password_file: Some(password_file(
            dir.path(),
            &[("hub", "hub-Secret-6"), ("pi-1", "node-Secret-7")],
        )),
        users: BTreeMap::from([("legacy".to_owned(), Password::new("plain-Secret-8"))]),
        ..broker_config()
    };
    let broker = start_broker(&config);
    let port = broker.mqtt_addr().port();

    let login = |user: &str, pass: &str| {
        let mut o = TestClient::options(port, &format!("c-{user}-{}", pass.len()));
        o.set_credentials(user, pass);
        o
    };
    for (user, pass, ok) in [
        ("hub", "hub-Secret-6", true),
        ("pi-1", "node-Secret-7", true),
        ("legacy", "plain-Secret-8", true),
        ("hub", "node-Secret-7", false),
        ("hub", "", false),
        ("nobody", "hub-Secret-6", false),
    ] {
        let result = TestClient::try_connect(login(user, pass)).await;
        assert_eq!(result.is_ok(), ok, "{user}/{pass}: {result:?}");
    }
    assert!(
        TestClient::try_connect(TestClient::options(port, "anon"))
            .await
            .is_err(),
        "anonymous clients are refused once a password file is set"
    );

    // The shell experience.
    let sub = Subscriber::start(port, "t/#", &["-u", "hub", "-P", "hub-Secret-6"]);
    let out = mosquitto_pub(
        port,
        &["-t", "t/x", "-m", "hi", "-u", "pi-1", "-P", "wrong"],
    );
    assert!(!out.status.success(), "a wrong password must fail");
    let out = mosquitto_pub(
        port,
        &["-t", "t/x", "-m", "hi", "-u", "pi-1", "-P", "node-Secret-7"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    sub.expect_line("t/x hi", WAIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_is_refused_while_the_right_password_still_gets_in() {
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig {
        password_file: Some(password_file(dir.path(), &[("hub", "hub-Secret-9")])),
        ..broker_config()
    };
    let broker = start_broker(&config);
    let port = broker.mqtt_addr().port();
    // 40 wrong logins at once: each costs an argon2 verification, at most
    // two run at a time, and the broker stays responsive to a real login.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..40 {
        tasks.push(tokio::spawn(async move {
            let mut o = TestClient::options(port, &format!("guess-{i}"));
            o.set_credentials("hub", format!("guess-{i}"));
            TestClient::try_connect(o).await.is_err()
        }));
    }
    let mut o = TestClient::options(port, "real-hub");
    o.set_credentials("hub", "hub-Secret-9");
    let real = TestClient::try_connect(o).await;
    for t in tasks {
        assert!(t.await.unwrap(), "a wrong password got in");
    }
    eprintln!("40 wrong logins + 1 right one took {:?}", started.elapsed());
    // Under a flood the right login may be queued behind wrong ones or time
    // out waiting for a slot; it must not be accepted with a wrong password
    // and a retry after the flood must succeed.
    if real.is_err() {
        let mut o = TestClient::options(port, "real-hub-retry");
        o.set_credentials("hub", "hub-Secret-9");
        TestClient::try_connect(o)
            .await
            .expect("the right password works after the flood");
    }
}

/// Runs the broker binary with hashed and plain users and `HEARTH_LOG=log`,
/// tries right and wrong logins, and returns everything it logged.
fn broker_log_during_logins(log: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let passwd = password_file(dir.path(), &[("hub", "Hashed-Pw-4471")]);
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\npassword_file = \"{}\"\n\
             [broker.users]\nlegacy = \"Plain-Pw-9913\"\n",
            passwd.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let mut broker = BrokerProcess::start_exe(
        Path::new(env!("CARGO_BIN_EXE_hearth-broker")),
        &[("HEARTH_LOG", log)],
        &["--config", config],
    );
    let port = broker.port();
    for (user, pass, ok) in [
        ("hub", "Hashed-Pw-4471", true),
        ("hub", "Wrong-Pw-5520", false),
        ("legacy", "Plain-Pw-9913", true),
        ("legacy", "Wrong-Pw-6631", false),
        ("nobody", "Wrong-Pw-7742", false),
    ] {
        let out = mosquitto_pub(port, &["-t", "x", "-m", "y", "-u", user, "-P", pass]);
        assert_eq!(out.status.success(), ok, "{user}: {}", stderr(&out));
    }
    broker.terminate().1.join("\n")
}

#[test]
fn passwords_never_appear_in_the_broker_log() {
    for level in ["info", "trace"] {
        let log = broker_log_during_logins(level);
        for secret in [
            "Hashed-Pw-4471",
            "Wrong-Pw-5520",
            "Plain-Pw-9913",
            "Wrong-Pw-6631",
            "Wrong-Pw-7742",
            "$argon2id$",
        ] {
            assert!(
                !log.contains(secret),
                "HEARTH_LOG={level}: {secret:?} appears in the broker's log:\n{log}"
            );
        }
        // What it does say: the plain-text user by name, and refused logins by user name.
        assert!(
            log.contains("plain-text password") && log.contains("legacy"),
            "{level}: {log}"
        );
        assert!(log.contains("login refused"), "{level}: {log}");
        assert!(log.contains("nobody"), "{level}: {log}");
        eprintln!(
            "HEARTH_LOG={level}: {} log lines, no password in any",
            log.lines().count()
        );
    }
}

/// fail2ban and a reader of the journal see the address and user of every
/// refused MQTT login, also behind the TLS front (which relays from
/// loopback); a client retrying a wrong password in a loop gets five lines
/// a minute, not one per try, and the right password still works.
#[test]
fn refused_mqtt_logins_name_the_client_address_a_few_times_a_minute() {
    require_tool("mosquitto_pub");
    let dir = tempfile::tempdir().unwrap();
    let pki = hearth_testkit::tls::TestPki::new("hearth login test CA");
    let passwd = password_file(dir.path(), &[("hub", "Right-Pw-2210")]);
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\npassword_file = \"{}\"\n\
             [broker.tls]\nlisten = \"127.0.0.1:0\"\ncert = \"{}\"\nkey = \"{}\"\n",
            passwd.display(),
            pki.cert.display(),
            pki.key.display()
        ),
    )
    .unwrap();
    let mut broker = BrokerProcess::start_exe(
        Path::new(env!("CARGO_BIN_EXE_hearth-broker")),
        &[("HEARTH_LOG", "info")],
        &["--config", config.to_str().unwrap()],
    );
    let port = broker.port();
    let tls_port = broker
        .log()
        .wait_for(|line| {
            line.strip_prefix("hearth-broker: mqtts listening on ")
                .and_then(|a| a.trim().parse::<std::net::SocketAddr>().ok())
        })
        .unwrap()
        .port();
    let ca = pki.ca.to_str().unwrap();
    let publish = |port: u16, from: &str, password: &str, tls: bool| {
        let mut args = vec![
            "-A", from, "-u", "hub", "-P", password, "-t", "x", "-m", "y",
        ];
        if tls {
            args.extend(["--cafile", ca]);
        }
        mosquitto_pub(port, &args)
    };
    for _ in 0..8 {
        let out = publish(port, "127.0.0.3", "Wrong-Pw-3301", false);
        assert!(!out.status.success(), "a wrong password was accepted");
    }
    for _ in 0..2 {
        let out = publish(tls_port, "127.0.0.2", "Wrong-Pw-3302", true);
        assert!(
            !out.status.success(),
            "a wrong password was accepted over TLS"
        );
    }
    let out = publish(port, "127.0.0.3", "Right-Pw-2210", false);
    assert!(
        out.status.success(),
        "the right password from an address that failed 8 times: {}",
        stderr(&out)
    );
    let log = broker.terminate().1;
    let refused: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("MQTT login refused"))
        .collect();
    let from = |ip: &str| {
        refused
            .iter()
            .filter(|l| l.contains(&format!("client={ip} ")))
            .count()
    };
    assert_eq!(
        (from("127.0.0.3"), from("127.0.0.2"), from("127.0.0.1")),
        (5, 2, 0),
        "lines per address (8 refusals over TCP from .3, 2 over TLS from .2): {refused:#?}"
    );
    assert!(
        refused.iter().all(|l| l.contains("username=hub")),
        "every line names the user: {refused:#?}"
    );
    for secret in ["Wrong-Pw-3301", "Wrong-Pw-3302", "Right-Pw-2210"] {
        assert!(
            !log.iter().any(|l| l.contains(secret)),
            "{secret} in the log: {log:#?}"
        );
    }
}

#[test]
fn check_config_reads_the_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = password_file(dir.path(), &[("hub", "pw")]);
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nlisten = \"0.0.0.0:1883\"\npassword_file = \"{}\"\n",
            passwd.display()
        ),
    )
    .unwrap();
    let out = broker()
        .args(["--check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 user(s)"), "{stdout}");

    // A mosquitto_passwd file is refused with a way out, naming the line.
    std::fs::write(&passwd, "hub:$7$101$c2FsdA==$aGFzaA==\n").unwrap();
    let out = broker()
        .args(["--check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success(), "accepted: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("line 1") && err.contains("hearth-broker passwd"),
        "{err}"
    );

    // A password file that is not there is named.
    std::fs::remove_file(&passwd).unwrap();
    let out = broker()
        .args(["--check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success(), "accepted: {}", stderr(&out));
    assert!(
        stderr(&out).contains(&passwd.display().to_string()),
        "{}",
        stderr(&out)
    );
}
