//! The "Latency over time" section of `report.html`: each phase's heatmap, the window table
//! (count and percentiles of the chosen seconds, the whole run until a window is chosen), the
//! run's seconds embedded as compact JSON, and the script that recomputes the table for a window
//! dragged on a heatmap (or named in the URL, `#window=FIRST-LAST`, inclusive seconds). The
//! script adds the window's seconds' counts and takes nearest-rank percentiles (rank =
//! ⌈q × n⌉), as `summary.json` and HdrHistogram's readers do, so a window's figures are exactly
//! those of its intervals added up. Pure: the report in, HTML text out.

use std::fmt::Write as _;

use super::heatmap;
use super::text::{escape, micros};
use crate::metrics::Phase;
use crate::report::format::intervals::{Counts, LatencyIntervals, value_at_quantile};
use crate::results::RunSummary;

/// The window table's figures: their `data-field` name, heading and quantile (`None`: the count).
const FIGURES: [(&str, &str, Option<f64>); 6] = [
    ("count", "count", None),
    ("p50", "p50", Some(0.5)),
    ("p90", "p90", Some(0.9)),
    ("p99", "p99", Some(0.99)),
    ("p999", "p99.9", Some(0.999)),
    ("max", "max", Some(1.0)),
];

/// Writes the section: heading, window controls and table, one heatmap (or "no data" line) per
/// phase, the embedded seconds and the window script.
pub(super) fn write_section(out: &mut String, s: &RunSummary, intervals: &LatencyIntervals) {
    out.push_str("<h2>Latency over time</h2>\n");
    let Some(span) = intervals.span() else {
        let why = super::no_data::phase_without_data(&s.results, Phase::Assigned, false);
        let _ = writeln!(out, "<p class=\"no-chart\" id=\"heatmaps\">Latency over time: no data: {}</p>", escape(&why));
        return;
    };
    let _ = writeln!(
        out,
        "<p class=\"window\">Drag across a heatmap to choose a window of seconds; the table shows that window's \
         latencies, added up from its intervals. <span id=\"window-label\">Window: the whole run, seconds {} to {}.\
         </span> <button id=\"window-reset\" type=\"button\">Whole run</button></p>",
        span.0, span.1
    );
    window_table(out, intervals);
    for phase in Phase::ALL {
        let id = format!("heatmap-{}", phase.as_str());
        match intervals.of_phase(phase) {
            Some(seconds) => {
                let _ = writeln!(
                    out,
                    "<figure class=\"chart heatmap\" id=\"{id}\">{}<figcaption>{} latency second by second: \
                     shade = devices in the cell (log scale), lines = that second's p50 and p99</figcaption></figure>",
                    heatmap::svg(phase.as_str(), seconds, span),
                    phase.as_str()
                );
            }
            None => {
                let why = super::no_data::phase_without_data(&s.results, phase, true);
                let _ = writeln!(
                    out,
                    "<p class=\"no-chart\" id=\"{id}\">{} over time: no data: {}</p>",
                    phase.as_str(),
                    escape(&why)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "<script type=\"application/json\" id=\"latency-intervals\">{}</script>",
        embedded(intervals, span)
    );
    out.push_str(WINDOW_SCRIPT);
}

/// The table the script rewrites: one row a phase that recorded anything, the whole run's
/// figures to begin with; each cell's exact figure in `data-value` (microseconds, or the count).
fn window_table(out: &mut String, intervals: &LatencyIntervals) {
    out.push_str("<table id=\"window-table\"><tr><th>phase (window)</th>");
    for (_, heading, _) in FIGURES {
        let _ = write!(out, "<th>{heading}</th>");
    }
    out.push_str("</tr>\n");
    for (phase, seconds) in intervals.phases() {
        let mut whole = Counts::new();
        for (value, count) in seconds.values().flatten() {
            *whole.entry(*value).or_default() += count;
        }
        let _ = write!(out, "<tr data-phase=\"{0}\"><td>{0}</td>", phase.as_str());
        for (field, _, quantile) in FIGURES {
            let (value, shown) = match quantile {
                None => {
                    let count: u64 = whole.values().sum();
                    (count, count.to_string())
                }
                Some(q) => {
                    let value = value_at_quantile(&whole, q).unwrap_or(0);
                    (value, micros(value))
                }
            };
            let _ = write!(out, "<td data-field=\"{field}\" data-value=\"{value}\">{shown}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// The seconds as JSON: `{"first":F,"last":L,"phases":{"assigned":[[second,[v,c,dv,c,…]],…]}}`,
/// each second's values ascending, the first whole and each next as its step from the one
/// before (short numbers), each followed by its count.
fn embedded(intervals: &LatencyIntervals, (first, last): (u64, u64)) -> String {
    let mut json = format!("{{\"first\":{first},\"last\":{last},\"phases\":{{");
    for (index, (phase, seconds)) in intervals.phases().enumerate() {
        let _ = write!(json, "{}\"{}\":[", if index > 0 { "," } else { "" }, phase.as_str());
        for (column, (second, counts)) in seconds.iter().enumerate() {
            let _ = write!(json, "{}[{second},[", if column > 0 { "," } else { "" });
            let mut previous = 0;
            for (pair, (value, count)) in counts.iter().enumerate() {
                let _ = write!(json, "{}{},{count}", if pair > 0 { "," } else { "" }, value - previous);
                previous = *value;
            }
            json.push_str("]]");
        }
        json.push(']');
    }
    json.push_str("}}");
    json
}

/// Recomputes the window table for a window of seconds: dragged on any heatmap (the window is
/// shaded on all), named at load by `#window=FIRST-LAST`, or the whole run again by the reset
/// button. Marks the body with the window shown (`data-window`).
const WINDOW_SCRIPT: &str = "<script>\n(function(){var data=JSON.parse(document.getElementById('latency-intervals').textContent);\
var F=[['p50',0.5],['p90',0.9],['p99',0.99],['p999',0.999]];\
function fmt(us){return us<1000?us+'us':us<1e6?(us/1000).toFixed(1)+'ms':(us/1e6).toFixed(2)+'s';}\
function figures(columns,a,b){var m={};columns.forEach(function(c){if(c[0]<a||c[0]>b){return;}var p=c[1],v=0;\
for(var i=0;i<p.length;i+=2){v+=p[i];m[v]=(m[v]||0)+p[i+1];}});\
var vs=Object.keys(m).map(Number).sort(function(x,y){return x-y;}),n=0;vs.forEach(function(v){n+=m[v];});\
var r={count:n};if(!n){return r;}F.forEach(function(f){var rank=Math.max(1,Math.ceil(f[1]*n)),seen=0;\
for(var i=0;i<vs.length;i++){seen+=m[vs[i]];if(seen>=rank){r[f[0]]=vs[i];break;}}});r.max=vs[vs.length-1];return r;}\
var maps=document.querySelectorAll('svg.heatmap');\
function show(a,b){if(a>b){var t=a;a=b;b=t;}a=Math.max(a,data.first);b=Math.min(b,data.last);\
Object.keys(data.phases).forEach(function(ph){var r=figures(data.phases[ph],a,b);\
document.querySelectorAll('#window-table tr[data-phase=\"'+ph+'\"] td[data-field]').forEach(function(td){\
var f=td.getAttribute('data-field'),v=r[f];td.setAttribute('data-value',v===undefined?'':v);\
td.textContent=v===undefined?'-':f==='count'?v:fmt(v);});});\
var whole=a===data.first&&b===data.last;maps.forEach(function(svg){var w=svg.querySelector('rect.window'),\
x0=+svg.dataset.x0,step=(+svg.dataset.x1-x0)/(data.last-data.first+1);\
w.setAttribute('x',x0+(a-data.first)*step);w.setAttribute('width',(b-a+1)*step);w.setAttribute('display',whole?'none':'inline');});\
document.getElementById('window-label').textContent=whole?'Window: the whole run, seconds '+a+' to '+b+'.':'Window: seconds '+a+' to '+b+'.';\
document.body.setAttribute('data-window',a+'-'+b);}\
function second(svg,event){var p=svg.createSVGPoint();p.x=event.clientX;p.y=event.clientY;p=p.matrixTransform(svg.getScreenCTM().inverse());\
var x0=+svg.dataset.x0,n=data.last-data.first+1,column=Math.floor(n*(p.x-x0)/(svg.dataset.x1-x0));\
return data.first+Math.max(0,Math.min(n-1,column));}\
var start=null;maps.forEach(function(svg){svg.style.cursor='crosshair';\
svg.addEventListener('mousedown',function(e){start=second(svg,e);show(start,start);e.preventDefault();});\
svg.addEventListener('mousemove',function(e){if(start!==null){show(start,second(svg,e));}});});\
document.addEventListener('mouseup',function(){start=null;});\
document.getElementById('window-reset').addEventListener('click',function(){show(data.first,data.last);});\
var named=/window=(\\d+)-(\\d+)/.exec(location.hash+location.search);\
show(named?+named[1]:data.first,named?+named[2]:data.last);})();\n</script>\n";
