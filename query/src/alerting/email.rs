//! Email over SMTP: STARTTLS when the server offers it (required unless
//! `require_tls: false`), implicit TLS on port 465, AUTH PLAIN or LOGIN (only over
//! TLS), and a multipart text + HTML message.

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::config::Email;
use super::dispatch::{Flush, Job};
use super::message::{data, html_body, render, subject, text_body};

const TIMEOUT: Duration = Duration::from_secs(30);

struct Smtp<S> {
    s: BufReader<S>,
}

struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Smtp<S> {
    async fn reply(&mut self) -> Result<Reply, String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = self
                .s
                .read_line(&mut line)
                .await
                .map_err(|e| format!("reading from the SMTP server: {e}"))?;
            if n == 0 {
                return Err("the SMTP server closed the connection".into());
            }
            let line = line.trim_end().to_string();
            let code: u16 = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("bad SMTP reply {line:?}"))?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if last {
                return Ok(Reply { code, lines });
            }
        }
    }

    async fn expect(&mut self, want: u16, what: &str) -> Result<Reply, String> {
        let r = self.reply().await?;
        if r.code != want {
            return Err(format!("{what}: {} {}", r.code, r.lines.join(" ")));
        }
        Ok(r)
    }

    async fn cmd(&mut self, line: &str, want: u16, what: &str) -> Result<Reply, String> {
        self.s
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .map_err(|e| format!("writing to the SMTP server: {e}"))?;
        self.expect(want, what).await
    }

    /// EHLO; the extensions the server offers (upper case).
    async fn ehlo(&mut self, hello: &str) -> Result<Vec<String>, String> {
        let r = self.cmd(&format!("EHLO {hello}"), 250, "EHLO").await?;
        Ok(r.lines.iter().skip(1).map(|l| l.to_uppercase()).collect())
    }

    async fn transaction(
        &mut self,
        e: &Email,
        ext: &[String],
        tls: bool,
        message: &str,
    ) -> Result<(), String> {
        if !e.auth_username.is_empty() {
            if !tls {
                return Err(
                    "refusing to send SMTP credentials over a connection without TLS".into(),
                );
            }
            let mechs: Vec<&str> = ext
                .iter()
                .find_map(|l| l.strip_prefix("AUTH"))
                .map(|m| m.split_whitespace().collect())
                .unwrap_or_default();
            let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
            let password = e.auth_password.value()?;
            if mechs.contains(&"PLAIN") {
                let token = format!("{}\0{}\0{}", e.auth_identity, e.auth_username, password);
                self.cmd(&format!("AUTH PLAIN {}", b64(&token)), 235, "AUTH PLAIN")
                    .await?;
            } else if mechs.contains(&"LOGIN") {
                self.cmd("AUTH LOGIN", 334, "AUTH LOGIN").await?;
                self.cmd(&b64(&e.auth_username), 334, "AUTH LOGIN user")
                    .await?;
                self.cmd(&b64(&password), 235, "AUTH LOGIN password")
                    .await?;
            } else {
                return Err(
                    "the SMTP server offers no supported AUTH mechanism (PLAIN, LOGIN)".into(),
                );
            }
        }
        self.cmd(
            &format!("MAIL FROM:<{}>", address(&e.from)),
            250,
            "MAIL FROM",
        )
        .await?;
        for to in e.to.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            self.cmd(&format!("RCPT TO:<{}>", address(to)), 250, "RCPT TO")
                .await?;
        }
        self.cmd("DATA", 354, "DATA").await?;
        let mut body = String::with_capacity(message.len() + 16);
        for line in message.split("\r\n") {
            if line.starts_with('.') {
                body.push('.');
            }
            body.push_str(line);
            body.push_str("\r\n");
        }
        body.push_str(".\r\n");
        self.s
            .get_mut()
            .write_all(body.as_bytes())
            .await
            .map_err(|e| format!("writing to the SMTP server: {e}"))?;
        self.expect(250, "sending the message").await?;
        let _ = self.cmd("QUIT", 221, "QUIT").await;
        Ok(())
    }
}

/// `Name <a@b>` → `a@b`.
fn address(s: &str) -> &str {
    match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s.trim(),
    }
}

/// A header value, RFC 2047-encoded when it is not plain ASCII.
fn header_value(v: &str) -> String {
    if v.is_ascii() && !v.contains(['\r', '\n']) {
        v.to_string()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v.replace(['\r', '\n'], " "))
        )
    }
}

fn wrap76(s: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(s);
    b.as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// RFC 2822 date of a Unix time in milliseconds.
fn rfc2822(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let (y, m, d) = crate::rules::template::civil_from_days(days);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} +0000",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// The whole message (headers and multipart body) with CRLF line ends.
pub(crate) fn message(
    e: &Email,
    flush: &Flush,
    job: &Job,
    external_url: &str,
    now_ms: i64,
) -> Result<String, String> {
    let d = data(flush, job, external_url);
    let text = render("email text", &e.text, &d, || {
        text_body(flush, job, external_url)
    })?;
    let html = render("email html", &e.html, &d, || {
        html_body(flush, job, external_url)
    })?;
    let mut headers: Vec<(String, String)> = vec![
        ("From".into(), e.from.clone()),
        ("To".into(), e.to.clone()),
        ("Subject".into(), subject(flush, job)),
    ];
    for (k, v) in &e.headers {
        let v = render(
            &format!("email header {k}"),
            &Some(v.clone()),
            &d,
            String::new,
        )?;
        match headers.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
            Some(h) => h.1 = v,
            None => headers.push((k.clone(), v)),
        }
    }
    let boundary = format!(
        "signalbox-{:016x}",
        xxhash_rust::xxh3::xxh3_64(format!("{now_ms}{}", flush.group_key).as_bytes())
    );
    let host = e
        .from
        .rsplit('@')
        .next()
        .unwrap_or("localhost")
        .trim_end_matches('>');
    let mut m = String::new();
    for (k, v) in &headers {
        m.push_str(&format!("{k}: {}\r\n", header_value(v)));
    }
    m.push_str(&format!("Date: {}\r\n", rfc2822(now_ms)));
    m.push_str(&format!("Message-Id: <{boundary}.{now_ms}@{host}>\r\n"));
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
    ));
    for (ctype, body) in [("text/plain", &text), ("text/html", &html)] {
        if body.is_empty() {
            continue;
        }
        m.push_str(&format!(
            "--{boundary}\r\nContent-Type: {ctype}; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            wrap76(body)
        ));
    }
    m.push_str(&format!("--{boundary}--"));
    Ok(m)
}

pub(crate) async fn send(
    e: &Email,
    flush: &Flush,
    job: &Job,
    external_url: &str,
) -> Result<(), String> {
    let msg = message(e, flush, job, external_url, crate::rules::manager::now_ms())?;
    tokio::time::timeout(TIMEOUT, deliver(e, &msg))
        .await
        .map_err(|_| format!("SMTP with {} timed out", e.smarthost))?
}

async fn deliver(e: &Email, msg: &str) -> Result<(), String> {
    let (host, port) = e
        .smarthost
        .rsplit_once(':')
        .and_then(|(h, p)| {
            p.parse::<u16>()
                .ok()
                .map(|p| (h.trim_matches(['[', ']']), p))
        })
        .ok_or_else(|| format!("smarthost {:?} must be host:port", e.smarthost))?;
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|err| format!("cannot connect to {}: {err}", e.smarthost))?;
    let cfg = match &e.ca_file {
        Some(f) => super::tls::client_config(Some(f))?,
        None => super::tls::default_config(),
    };
    let name = e.server_name.as_deref().unwrap_or(host);
    if port == 465 {
        let tls = super::tls::connect(tcp, name, cfg).await?;
        let mut s = Smtp {
            s: BufReader::new(tls),
        };
        s.expect(220, "greeting").await?;
        let ext = s.ehlo(&e.hello).await?;
        return s.transaction(e, &ext, true, msg).await;
    }
    let mut s = Smtp {
        s: BufReader::new(tcp),
    };
    s.expect(220, "greeting").await?;
    let ext = s.ehlo(&e.hello).await?;
    if ext.iter().any(|x| x == "STARTTLS") {
        s.cmd("STARTTLS", 220, "STARTTLS").await?;
        let tls = super::tls::connect(s.s.into_inner(), name, cfg).await?;
        let mut s = Smtp {
            s: BufReader::new(tls),
        };
        let ext = s.ehlo(&e.hello).await?;
        return s.transaction(e, &ext, true, msg).await;
    }
    if e.require_tls {
        return Err(format!(
            "require_tls is true (the default) but {} does not offer STARTTLS",
            e.smarthost
        ));
    }
    s.transaction(e, &ext, false, msg).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_headers() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc2822(1_795_000_000_000),
            "Wed, 18 Nov 2026 11:06:40 +0000"
        );
        assert_eq!(address("Ops <ops@example.com>"), "ops@example.com");
        assert_eq!(header_value("[FIRING:1] Down"), "[FIRING:1] Down");
        assert_eq!(header_value("Ünïcode"), "=?UTF-8?B?w5xuw69jb2Rl?=");
    }
}
