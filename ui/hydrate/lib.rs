//! Entry point of the browser bundle: hydrates the server-rendered page.

use wasm_bindgen::prelude::wasm_bindgen;

#[wasm_bindgen]
pub fn hydrate() {
    signalbox_ui::hydrate();
}
