//! Builds the browser half of the UI when the server half (`ssr`) is compiled.
//!
//! The hydrate flavour of this crate is compiled to `wasm32-unknown-unknown` by a
//! nested `cargo build` of `ui/hydrate` (its own workspace, its own target directory
//! `<target>/ui-wasm`, always the size-optimised release profile), then wasm-bindgen
//! (as a library, pinned to the same version as the `wasm-bindgen` crate the bundle
//! links) writes `signalbox.js` and `signalbox_bg.wasm` into `OUT_DIR/pkg`, from where
//! the server embeds them. A missing wasm target is installed through rustup; if that
//! fails the build stops with the command to run: there is no UI-less build.

#![cfg_attr(not(feature = "ssr"), allow(unused_imports, dead_code))]

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-unknown-unknown";

#[cfg(not(feature = "ssr"))]
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}

#[cfg(feature = "ssr")]
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    for path in [
        "src",
        "style",
        "Cargo.toml",
        "hydrate/Cargo.toml",
        "hydrate/Cargo.lock",
        "hydrate/lib.rs",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            manifest_dir.join(path).display()
        );
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    ensure_wasm_target();
    let wasm = build_wasm(&manifest_dir, &target_dir(&out_dir));
    let pkg = out_dir.join("pkg");
    std::fs::create_dir_all(&pkg).expect("create OUT_DIR/pkg");
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .input_path(&wasm)
        .out_name("signalbox")
        .typescript(false)
        .web(true)
        .expect("wasm-bindgen web mode");
    if let Err(e) = bindgen.generate(&pkg) {
        panic!("wasm-bindgen failed on {}: {e:#}", wasm.display());
    }
}

/// The workspace's target directory: `OUT_DIR` is `<target>/<profile>/build/<pkg>/out`
/// (or `<target>/<triple>/<profile>/build/<pkg>/out` when cross-compiling).
#[cfg(feature = "ssr")]
fn target_dir(out_dir: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let mut dir = out_dir;
    for _ in 0..4 {
        dir = dir
            .parent()
            .expect("OUT_DIR is inside the target directory");
    }
    if dir.join("CACHEDIR.TAG").exists() {
        dir.to_path_buf()
    } else {
        dir.parent().unwrap_or(dir).to_path_buf()
    }
}

#[cfg(feature = "ssr")]
fn rustc() -> Command {
    Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
}

#[cfg(feature = "ssr")]
fn ensure_wasm_target() {
    let sysroot = rustc()
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = |root: &Path| {
        root.join("lib/rustlib")
            .join(WASM_TARGET)
            .join("lib")
            .is_dir()
    };
    if sysroot.as_deref().is_some_and(installed) {
        return;
    }
    println!(
        "cargo:warning=installing the {WASM_TARGET} target for the web UI (rustup target add {WASM_TARGET})"
    );
    let added = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status();
    if !matches!(added, Ok(s) if s.success()) || !sysroot.as_deref().is_some_and(installed) {
        panic!(
            "the web UI needs the {WASM_TARGET} Rust target and it could not be installed; run\n\n    rustup target add {WASM_TARGET}\n\nand build again"
        );
    }
}

#[cfg(feature = "ssr")]
fn build_wasm(manifest_dir: &Path, target_dir: &Path) -> PathBuf {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let wasm_target_dir = target_dir.join("ui-wasm");
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--target",
        WASM_TARGET,
        "--manifest-path",
    ])
    .arg(manifest_dir.join("hydrate/Cargo.toml"))
    .arg("--target-dir")
    .arg(&wasm_target_dir);
    // Nothing the outer build was configured with applies to the wasm build.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS"
            || matches!(
                key.as_ref(),
                "RUSTFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTDOCFLAGS"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
            )
        {
            cmd.env_remove(key.as_ref());
        }
    }
    // Build-script stdout is read by cargo; the nested build reports on stderr.
    cmd.stdout(std::io::stderr());
    let status = cmd.status().expect("run cargo for the web UI's wasm build");
    if !status.success() {
        panic!("the web UI's wasm build failed ({status}); see the cargo output above");
    }
    wasm_target_dir
        .join(WASM_TARGET)
        .join("release/signalbox_ui_hydrate.wasm")
}
