//! A small WebDriver client: [`Driver`] is a `chromedriver` process on a
//! loopback port, [`Session`] one headless Chromium it drives, over the W3C
//! WebDriver protocol (JSON over HTTP, <https://www.w3.org/TR/webdriver2/>).
//!
//! Only what the browser test uses: open a URL, find an element by CSS
//! selector, type into it, click it, run a script, answer a `confirm()`,
//! take a screenshot, and
//! wait until a script's answer satisfies a condition. Every HTTP call has
//! a timeout and every wait is bounded, so a hung browser fails the test.
//!
//! | call | W3C endpoint |
//! |---|---|
//! | [`Driver::session`] | `POST /session` |
//! | [`Session::goto`] | `POST /session/{id}/url` |
//! | [`Session::find`] | `POST /session/{id}/element` |
//! | [`Session::type_into`] | `POST /session/{id}/element/{e}/clear`, `…/value` |
//! | [`Session::click`] | `POST /session/{id}/element/{e}/click` |
//! | [`Session::script`] | `POST /session/{id}/execute/sync` |
//! | [`Session::accept_alert`] | `POST /session/{id}/alert/accept` |
//! | [`Session::screenshot`] | `GET /session/{id}/screenshot` |
//! | drop | `DELETE /session/{id}` |

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// The browser and its driver, from Debian's `chromium` and
/// `chromium-driver` packages (on `PATH`).
pub const CHROMIUM: &str = "chromium";
/// See [`CHROMIUM`].
pub const CHROMEDRIVER: &str = "chromedriver";

/// The key W3C WebDriver names an element reference by.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Longest any one WebDriver call may take (starting a browser is the
/// slowest, on a busy machine).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`Session::wait_for`] waits for a page to catch up.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running `chromedriver`, killed on drop.
pub struct Driver {
    child: Child,
    base: String,
    agent: ureq::Agent,
}

impl Driver {
    /// Starts `chromedriver` on a free loopback port and waits until it is
    /// ready.
    pub fn start() -> Driver {
        let port = super::free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(CALL_TIMEOUT))
            .build()
            .into();
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            agent,
        };
        let end = Instant::now() + PATIENCE;
        loop {
            let ready = driver.call("GET", "/status", None).ok();
            if ready.is_some_and(|v| v["ready"] == true) {
                return driver;
            }
            assert!(Instant::now() < end, "{CHROMEDRIVER} did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A new headless Chromium with a profile of its own (no cookies or
    /// storage shared with other sessions), `width`×`height` pixels.
    pub fn session(&self, width: u32, height: u32) -> Session<'_> {
        self.session_with(width, height, false)
    }

    /// As [`Driver::session`], trusting any certificate (WebDriver's
    /// `acceptInsecureCerts`), for a server whose certificate a test CA
    /// signed.
    pub fn insecure_session(&self, width: u32, height: u32) -> Session<'_> {
        self.session_with(width, height, true)
    }

    fn session_with(&self, width: u32, height: u32, insecure: bool) -> Session<'_> {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": insecure,
            "goog:chromeOptions": {
                "binary": which(CHROMIUM),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--disable-extensions", "--lang=en-GB",
                         format!("--window-size={width},{height}")],
            },
        }}});
        let v = self
            .call("POST", "/session", Some(&caps))
            .unwrap_or_else(|e| panic!("cannot start a browser session: {e}"));
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {v}"))
            .to_owned();
        Session { driver: self, id }
    }

    /// One WebDriver call: the answer's `value`, or the error it reports.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let result = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(&json!({})).to_string()),
        };
        let mut response = result.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| format!("{method} {path}: reading the answer: {e}"))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{method} {path}: not JSON ({e}): {text:.200}"))?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if !status.is_success() || value.get("error").is_some() {
            return Err(format!(
                "{method} {path}: {status} {}: {}",
                value["error"], value["message"]
            ));
        }
        Ok(value)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The full path of `program` on `PATH` (chromedriver wants the binary's
/// path), or the name itself.
fn which(program: &str) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .map_or_else(|| program.to_owned(), |p| p.display().to_string())
}

/// An element found in a page: its WebDriver reference.
pub struct Element(String);

/// One browser window, closed on drop.
pub struct Session<'d> {
    driver: &'d Driver,
    id: String,
}

impl Session<'_> {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        self.driver
            .call(method, &format!("/session/{}{path}", self.id), body)
    }

    fn must(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.call(method, path, body)
            .unwrap_or_else(|e| panic!("webdriver: {e}"))
    }

    /// Opens `url` and waits until the page has loaded.
    pub fn goto(&self, url: &str) {
        self.must("POST", "/url", Some(&json!({ "url": url })));
    }

    /// The first element matching the CSS `selector`, or why not.
    pub fn try_find(&self, selector: &str) -> Result<Element, String> {
        let body = json!({"using": "css selector", "value": selector});
        let v = self.call("POST", "/element", Some(&body))?;
        v[ELEMENT_KEY]
            .as_str()
            .map(|id| Element(id.to_owned()))
            .ok_or_else(|| format!("no element reference in {v}"))
    }

    /// The first element matching `selector`, waiting for it to appear.
    pub fn find(&self, selector: &str) -> Element {
        let end = Instant::now() + PATIENCE;
        loop {
            match self.try_find(selector) {
                Ok(e) => return e,
                Err(why) if Instant::now() >= end => panic!("no element {selector}: {why}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Replaces the text of the input or textarea `selector` with `text`,
    /// typed key by key as a user would.
    pub fn type_into(&self, selector: &str, text: &str) {
        self.on_element(selector, |e| {
            self.call("POST", &format!("/element/{e}/clear"), None)?;
            self.call(
                "POST",
                &format!("/element/{e}/value"),
                Some(&json!({ "text": text })),
            )
        });
    }

    /// Clicks the element `selector` (scrolled into view first).
    pub fn click(&self, selector: &str) {
        self.on_element(selector, |e| {
            self.call("POST", &format!("/element/{e}/click"), None)
        });
    }

    /// Runs `act` on the element `selector`, finding it again while the
    /// page replaces it under us (a re-rendered list makes the reference
    /// "stale") or it cannot take input yet, at most [`PATIENCE`].
    fn on_element(&self, selector: &str, act: impl Fn(&str) -> Result<Value, String>) {
        let end = Instant::now() + PATIENCE;
        loop {
            let Element(e) = self.find(selector);
            match act(&e) {
                Ok(_) => return,
                Err(why) if Instant::now() >= end => panic!("webdriver: {selector}: {why}"),
                Err(why) if why.contains("stale element") || why.contains("not interactable") => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(why) => panic!("webdriver: {selector}: {why}"),
            }
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the
    /// page and returns what it returns.
    pub fn script(&self, script: &str, args: &[Value]) -> Value {
        self.must(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": args})),
        )
    }

    /// Runs `script` until `ok` holds for its answer, at most [`PATIENCE`];
    /// returns that answer, or fails the test saying `what` and the last
    /// answer.
    pub fn wait_for(
        &self,
        what: &str,
        script: &str,
        args: &[Value],
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + PATIENCE;
        loop {
            let v = self.script(script, args);
            if ok(&v) {
                return v;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting until {what}; last answer {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Answers "OK" to the page's `confirm()` dialog, waiting for it to
    /// open.
    pub fn accept_alert(&self) {
        let end = Instant::now() + PATIENCE;
        loop {
            match self.call("POST", "/alert/accept", None) {
                Ok(_) => return,
                Err(why) if Instant::now() >= end => panic!("no dialog to accept: {why}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// A PNG of the window as it is now.
    pub fn screenshot(&self) -> Vec<u8> {
        let v = self.must("GET", "/screenshot", None);
        let text = v.as_str().unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_else(|e| panic!("screenshot is not base64: {e}"))
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
    }
}
