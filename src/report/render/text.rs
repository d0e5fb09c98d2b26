//! The number and text helpers every renderer shares: microseconds for humans, a gate's
//! numbers, HTML escaping. A leaf of `render`: it imports nothing of the report. Pure.

/// Formats microseconds for humans: `840us`, `12.3ms`, `4.20s`.
pub fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us}us"),
        1_000..=999_999 => format!("{:.1}ms", us as f64 / 1000.0),
        _ => format!("{:.2}s", us as f64 / 1_000_000.0),
    }
}

/// What a gate observed, or that nothing was measured.
pub fn observed(value: Option<f64>) -> String {
    value.map_or_else(|| "nothing measured".into(), number)
}

/// A gate's number: whole numbers without decimals, others to three places.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{value:.0}") } else { format!("{value:.3}") }
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_formats() {
        assert_eq!(micros(840), "840us");
        assert_eq!(micros(12_345), "12.3ms");
        assert_eq!(micros(4_200_000), "4.20s");
    }
}
