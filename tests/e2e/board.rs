//! The promotion board in a real browser (Debian's headless Chromium): projects as
//! rows, environments in promotion order, what runs in each with its age and badge,
//! how far an environment lags the one before it; its pages and JSON API; at a
//! desktop and a phone width, every cell on screen and nothing wider than the screen;
//! and no serious or critical accessibility violation (axe-core, from the npm registry,
//! installed by scripts/install-tools). Screenshots are kept in
//! `target/test-artifacts/` (not committed).

use std::path::{Path, PathBuf};

use relctl::model::Status;
use serde_json::{Value, json};

use crate::support::{Harness, get, release};

const TABLE: &str = "relctl-releases";
const R1: &str = "3f9c2a1e-7b6d-4e5f-8a9b-0c1d2e3f4a51";
const R2: &str = "a1b2c3d4-9999-4e5f-8a9b-0c1d2e3f4a53";

const CONFIG: &str = r#"
[[projects]]
id = "shop"
name = "Shop"

[[projects.environments]]
id = "prod"
name = "Production"
requires = ["stage"]

[[projects.environments]]
id = "stage"
name = "Staging"
"#;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Headless Chromium with a throwaway profile: `args`, then `url`; its stdout.
async fn chromium(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.path().display()),
        ])
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("chromium runs (scripts/test installs Debian's chromium)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// What a probe run in the page at `width`×`height` found: axe-core's violations, each
/// environment cell's box, and the page's width against the window's. The page is the
/// board's own HTML, served from a file with axe added (the board itself runs no script).
async fn probe(html: &str, width: u32, height: u32) -> Value {
    let axe = root().join(".tools/axe/axe.min.js");
    assert!(axe.exists(), "scripts/install-tools installs axe-core");
    let script = format!(
        r#"<script src="file://{}"></script><script>
window.addEventListener('load', async () => {{
  const found = await axe.run(document, {{ runOnly: ['wcag2a', 'wcag2aa', 'best-practice'] }});
  const cells = [...document.querySelectorAll('td[data-env]')].map(td => {{
    const b = td.getBoundingClientRect();
    return {{ env: td.dataset.env, left: b.left, right: b.right, width: b.width, height: b.height }};
  }});
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({{
    violations: found.violations.map(v => ({{ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }})),
    cells,
    pageWidth: document.documentElement.scrollWidth,
    windowWidth: window.innerWidth,
  }});
  document.body.appendChild(out);
}});
</script>"#,
        axe.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("board.html");
    // Without its reload: in virtual time it would reload before the probe reports.
    let html = html.replace(
        &format!(
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            relctl_refresh()
        ),
        "",
    );
    assert!(!html.contains("http-equiv=\"refresh\""), "{html}");
    std::fs::write(&page, html.replace("</body>", &format!("{script}</body>"))).unwrap();
    let dom = chromium(
        &[
            &format!("--window-size={width},{height}"),
            "--allow-file-access-from-files",
            "--virtual-time-budget=20000",
            "--dump-dom",
        ],
        &format!("file://{}", page.display()),
    )
    .await;
    let found = dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("the probe did not run: {dom}"));
    serde_json::from_str(&found.replace("&quot;", "\"").replace("&amp;", "&"))
        .unwrap_or_else(|e| panic!("{e}: {found}"))
}

/// The board's reload interval, as it says it.
fn relctl_refresh() -> u32 {
    10
}

fn artifacts() -> PathBuf {
    let dir = root().join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(url: &str, width: u32, height: u32, name: &str) -> PathBuf {
    let path = artifacts().join(name);
    let _ = std::fs::remove_file(&path);
    chromium(
        &[
            &format!("--window-size={width},{height}"),
            &format!("--screenshot={}", path.display()),
        ],
        url,
    )
    .await;
    path
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[1..4], b"PNG", "{} is a PNG", path.display());
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    (be(16), be(20))
}

#[tokio::test]
async fn the_board_shows_promotion_order_lag_and_passes_in_a_browser_at_desktop_and_phone_widths() {
    let h = Harness::new(CONFIG).await;
    let mut r1 = release(
        R1,
        "shop",
        json!({ "api": "r.example/api:1", "web": "r.example/web:1" }),
    );
    r1["description"] = json!("first cut <b>bold</b>");
    let mut r2 = release(
        R2,
        "shop",
        json!({ "api": "r.example/api:2", "web": "r.example/web:1" }),
    );
    r2["description"] = json!("faster checkout");
    h.put_release(TABLE, r1.clone()).await;
    h.put_release(TABLE, r2.clone()).await;
    let controller = h.start_controller().await;
    for (id, env, at) in [
        (R1, "stage", "2026-12-02T09:00:00.000000"),
        (R1, "prod", "2026-12-02T09:10:00.000000"),
        (R2, "stage", "2026-12-02T09:20:00.000000"),
    ] {
        let entry = h.deploy(TABLE, id, env, at).await;
        assert_eq!(entry.status, Some(Status::Succeeded), "{entry:?}");
    }
    h.until_state("shop", "stage", |s| {
        s.observed.as_ref().is_some_and(|o| o.release_id == R2)
    })
    .await;
    let base = format!("http://{}", controller.addr);

    // The board as the browser builds it: stage before prod (prod requires stage),
    // each cell's short id, description (escaped), badge, and prod's lag.
    let dom = chromium(&["--dump-dom"], &format!("{base}/")).await;
    let (stage_at, prod_at) = (
        dom.find("data-env=\"shop/stage\"").expect("a stage cell"),
        dom.find("data-env=\"shop/prod\"").expect("a prod cell"),
    );
    assert!(stage_at < prod_at, "promotion order: {dom}");
    let cell = |at: usize| {
        dom[at..]
            .split("</td>")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let (stage, prod) = (cell(stage_at), cell(prod_at));
    assert!(
        stage.contains(">a1b2c3d4</a>") && stage.contains("faster checkout"),
        "{stage}"
    );
    assert!(stage.contains("badge converged"), "{stage}");
    assert!(
        prod.contains(">3f9c2a1e</a>") && prod.contains("first cut &lt;b&gt;bold&lt;/b&gt;"),
        "{prod}"
    );
    assert!(prod.contains("1 service behind stage"), "{prod}");
    assert!(prod.contains(" ago</time>"), "{prod}");

    // Its pages and API.
    let (code, page) = get(controller.addr, &format!("/releases/{}", R2)).await;
    assert_eq!(code, 200);
    assert!(
        page.contains("runs in: stage") && page.contains("faster checkout"),
        "{page}"
    );
    let (code, page) = get(controller.addr, "/environments/shop/prod").await;
    assert_eq!(code, 200);
    assert!(
        page.contains("<table id=\"history\">") && page.contains("3f9c2a1e"),
        "{page}"
    );
    let (code, api) = get(controller.addr, "/api/v1/environments").await;
    assert_eq!(code, 200);
    let api: Value = serde_json::from_str(&api).unwrap();
    let envs: Vec<&str> = api["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["environment"].as_str().unwrap())
        .collect();
    assert_eq!(envs, ["stage", "prod"]);
    assert_eq!(
        api["environments"][1]["behind"],
        json!({ "environment": "stage", "services": ["api"] })
    );
    let (code, api) = get(controller.addr, &format!("/api/v1/releases/{}", R1)).await;
    assert_eq!(code, 200);
    let api: Value = serde_json::from_str(&api).unwrap();
    assert_eq!(api["running_in"], json!(["prod"]));
    assert_eq!(api["differs"]["stage"], json!(["api"]));
    for missing in [
        "/api/v1/releases/nope",
        "/api/v1/environments/shop/nope",
        "/environments/x/y",
        "/releases/%3Cscript%3E",
    ] {
        let (code, body) = get(controller.addr, missing).await;
        assert_eq!(code, 404, "{missing}: {body}");
        assert!(!body.contains("<script>"), "{body}");
    }

    // At a desktop and a phone width: screenshots kept, every cell on screen, nothing
    // wider than the window, and no serious accessibility violation.
    let (_, html) = get(controller.addr, "/").await;
    for (name, width, height) in [("desktop", 1280, 900), ("phone", 390, 844)] {
        let shot = screenshot(
            &format!("{base}/"),
            width,
            height,
            &format!("board-{name}.png"),
        )
        .await;
        assert_eq!(png_size(&shot), (width, height), "{name} screenshot");
        let found = probe(&html, width, height).await;
        let serious: Vec<&Value> = found["violations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(serious.is_empty(), "{name}: {serious:#?}");
        let cells = found["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 2, "{name}: {found}");
        // Chromium's headless window is at least 500 px wide: the probe's phone is
        // that (the page's phone styles apply below 640 px); its screenshot is 390.
        let window = found["windowWidth"].as_f64().unwrap();
        assert!(window <= f64::from(width.max(500)), "{name}: {found}");
        for cell in cells {
            assert!(
                cell["width"].as_f64().unwrap() > 0.0 && cell["height"].as_f64().unwrap() > 0.0,
                "{name}: {cell}"
            );
            assert!(
                cell["right"].as_f64().unwrap() <= window + 0.5,
                "{name}: a cell off screen: {cell}"
            );
        }
        assert!(
            found["pageWidth"].as_f64().unwrap() <= found["windowWidth"].as_f64().unwrap(),
            "{name}: the page is wider than the window: {found}"
        );
    }
    controller.stop().await;
}
