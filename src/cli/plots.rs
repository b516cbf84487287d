//! PNG plots of a run: rates against layer, |cosine| heat maps of features
//! sorted by class, and 2D/3D scatter of input and output features.
//! Each file is drawn into a temporary name and renamed into place.

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use redunet_core::network::LayerRecord;
use std::path::Path;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSansMono.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in, so registration cannot fail at run time
        // unless the file itself is broken; plots then simply lack text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn temp_path(path: &Path) -> std::path::PathBuf {
    path.with_file_name(format!(
        ".{}.tmp-{}.png",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ))
}

/// Draws with `f` into a temporary PNG, then renames it to `path`.
fn draw_png(
    path: &Path,
    size: (u32, u32),
    f: impl FnOnce(&DrawingArea<BitMapBackend, plotters::coord::Shift>) -> Result<()>,
) -> Result<()> {
    register_font();
    let tmp = temp_path(path);
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        f(&root)?;
        root.present()
            .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

fn class_colour(j: usize) -> RGBColor {
    const P: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    P[j % P.len()]
}

/// The legend's sample of a line series of `colour`.
fn legend_line(colour: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
}

/// Draws the series' legend, boxed, at `position`.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("{e}"))
}

/// R, R_c and ΔR against layer.
pub fn rates(path: &Path, records: &[LayerRecord]) -> Result<()> {
    draw_png(path, (800, 500), |root| {
        let max_l = records.last().map_or(1, |r| r.layer.max(1)) as f64;
        let (lo, hi) = records
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
                (lo.min(r.r_c).min(r.delta_r), hi.max(r.r))
            });
        let pad = ((hi - lo) * 0.05).max(1e-6);
        let mut chart = ChartBuilder::on(root)
            .caption("Coding rates against layer", ("sans-serif", 22))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..max_l, (lo - pad)..(hi + pad))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("layer")
            .y_desc("nats")
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        type Series = (&'static str, RGBColor, fn(&LayerRecord) -> f64);
        let series: [Series; 3] = [
            ("R", class_colour(0), |r| r.r),
            ("R_c", class_colour(1), |r| r.r_c),
            ("ΔR", class_colour(2), |r| r.delta_r),
        ];
        for (name, colour, get) in series {
            chart
                .draw_series(LineSeries::new(
                    records.iter().map(|r| (r.layer as f64, get(r))),
                    colour.stroke_width(2),
                ))
                .map_err(|e| anyhow!("{e}"))?
                .label(name)
                .legend(legend_line(colour));
        }
        draw_legend(&mut chart, SeriesLabelPosition::MiddleRight)
    })
}

/// Heat map of |cosine similarity| between features, at most `per_class`
/// samples of each class, sorted by class.
pub fn cosine_heatmap(
    path: &Path,
    features: &[f32],
    labels: &[usize],
    dim: usize,
    per_class: usize,
    title: &str,
) -> Result<()> {
    let k = labels.iter().max().map_or(0, |&l| l + 1);
    let mut order = Vec::new();
    for j in 0..k {
        order.extend(
            (0..labels.len())
                .filter(|&i| labels[i] == j)
                .take(per_class.max(1)),
        );
    }
    let n = order.len();
    let unit: Vec<Vec<f32>> = order
        .iter()
        .map(|&i| {
            let row = &features[i * dim..(i + 1) * dim];
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-8);
            row.iter().map(|v| v / norm).collect()
        })
        .collect();
    let cell = (600 / n.max(1)).max(1) as u32;
    let side = cell * n as u32;
    draw_png(path, (side + 40, side + 60), |root| {
        root.draw(&Text::new(title.to_string(), (20, 10), ("sans-serif", 16)))
            .map_err(|e| anyhow!("{e}"))?;
        for a in 0..n {
            for b in 0..n {
                let c: f32 = unit[a]
                    .iter()
                    .zip(&unit[b])
                    .map(|(x, y)| x * y)
                    .sum::<f32>()
                    .abs();
                let v = (255.0 * (1.0 - c.clamp(0.0, 1.0))) as u8;
                let colour = RGBColor(v, v, 255 - (255 - v) / 3);
                let (x, y) = (20 + b as i32 * cell as i32, 40 + a as i32 * cell as i32);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32, y + cell as i32)],
                    colour.filled(),
                ))
                .map_err(|e| anyhow!("{e}"))?;
            }
        }
        Ok(())
    })
}

/// Scatter of 2D or 3D features coloured by class.
pub fn scatter(
    path: &Path,
    features: &[f32],
    labels: &[usize],
    dim: usize,
    title: &str,
) -> Result<()> {
    draw_png(path, (600, 600), |root| {
        let mut builder = ChartBuilder::on(root);
        builder.caption(title, ("sans-serif", 20)).margin(20);
        if dim == 2 {
            let mut chart = builder
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d(-1.1f32..1.1f32, -1.1f32..1.1f32)
                .map_err(|e| anyhow!("{e}"))?;
            chart.configure_mesh().draw().map_err(|e| anyhow!("{e}"))?;
            chart
                .draw_series(
                    features
                        .chunks(2)
                        .zip(labels)
                        .map(|(p, &l)| Circle::new((p[0], p[1]), 2, class_colour(l).filled())),
                )
                .map_err(|e| anyhow!("{e}"))?;
        } else {
            let mut chart = builder
                .build_cartesian_3d(-1.1f32..1.1f32, -1.1f32..1.1f32, -1.1f32..1.1f32)
                .map_err(|e| anyhow!("{e}"))?;
            chart.with_projection(|mut p| {
                p.yaw = 0.6;
                p.pitch = 0.4;
                p.into_matrix()
            });
            chart.configure_axes().draw().map_err(|e| anyhow!("{e}"))?;
            chart
                .draw_series(
                    features.chunks(3).zip(labels).map(|(p, &l)| {
                        Circle::new((p[0], p[1], p[2]), 2, class_colour(l).filled())
                    }),
                )
                .map_err(|e| anyhow!("{e}"))?;
        }
        Ok(())
    })
}

/// The phase transition of clustering by compression: the number of groups
/// (left axis) and the coding length (right axis) against ε² (log scale).
/// `points` are (ε², groups, bits).
pub fn phase_transition(path: &Path, points: &[(f64, f64, f64)]) -> Result<()> {
    let mut pts = points.to_vec();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    draw_png(path, (800, 500), |root| {
        let (lo, hi) = pts.iter().fold((f64::INFINITY, 0f64), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
        let (lo, hi) = (lo.log10() - 0.1, hi.log10() + 0.1);
        let max_groups = pts.iter().map(|p| p.1).fold(1.0, f64::max);
        let max_bits = pts.iter().map(|p| p.2).fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Clustering by compression: groups and coding length against ε²",
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .right_y_label_area_size(80)
            .build_cartesian_2d(lo..hi, 0f64..max_groups * 1.1)
            .map_err(|e| anyhow!("{e}"))?
            .set_secondary_coord(lo..hi, 0f64..max_bits * 1.1);
        chart
            .configure_mesh()
            .x_desc("log10 ε²")
            .y_desc("groups")
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_secondary_axes()
            .y_desc("L^c (bits)")
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        let (c0, c1) = (class_colour(0), class_colour(1));
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|p| (p.0.log10(), p.1)),
                c0.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e}"))?
            .label("groups")
            .legend(legend_line(c0));
        chart
            .draw_secondary_series(LineSeries::new(
                pts.iter().map(|p| (p.0.log10(), p.2)),
                c1.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e}"))?
            .label("coding length")
            .legend(legend_line(c1));
        draw_legend(&mut chart, SeriesLabelPosition::MiddleRight)
    })
}

/// CRATE's layers, trained (solid) and at initialisation (dashed): left,
/// each layer's compression step as a segment from the coding rate R^c of
/// its input (x = ℓ − 1) to that of the compressed tokens (x = ℓ − ½), both
/// against the layer's own subspaces; right, the fraction of zeros in each
/// layer's output (x = ℓ).
pub fn token_layers(
    path: &Path,
    trained: &[redunet_train::transformer::LayerRates],
    init: &[redunet_train::transformer::LayerRates],
) -> Result<()> {
    use redunet_train::transformer::LayerRates;
    let steps = |r: &[LayerRates]| -> Vec<Vec<(f64, f64)>> {
        r.iter()
            .enumerate()
            .map(|(l, x)| {
                vec![
                    (l as f64, x.compression_in),
                    (l as f64 + 0.5, x.compression),
                ]
            })
            .collect()
    };
    let sparsity = |r: &[LayerRates]| -> Vec<Vec<(f64, f64)>> {
        vec![
            r.iter()
                .enumerate()
                .map(|(l, x)| ((l + 1) as f64, x.sparsity))
                .collect(),
        ]
    };
    let depth = trained.len().max(init.len()).max(1) as f64;
    draw_png(path, (1100, 450), |root| {
        let (left, right) = root.split_horizontally(550);
        let (lo, hi) = trained
            .iter()
            .chain(init)
            .flat_map(|r| [r.compression_in, r.compression])
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        let pad = ((hi - lo) * 0.1).max(1e-3);
        let panels = [
            (
                left,
                "Compression steps: R^c(Z; U_l)",
                "R^c (nats)",
                [steps(trained), steps(init)],
                (lo - pad, hi + pad),
            ),
            (
                right,
                "Sparsity of each layer's output",
                "fraction of zeros",
                [sparsity(trained), sparsity(init)],
                (0.0, 1.0),
            ),
        ];
        for (area, title, y_desc, [t, i], (y0, y1)) in panels {
            let mut chart = ChartBuilder::on(&area)
                .caption(title, ("sans-serif", 18))
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(-0.2..depth + 0.2, y0..y1)
                .map_err(|e| anyhow!("{e}"))?;
            chart
                .configure_mesh()
                .x_desc("layer")
                .y_desc(y_desc)
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            let (c0, c1) = (class_colour(0), class_colour(7));
            for (n, seg) in t.into_iter().enumerate() {
                let s = chart
                    .draw_series(LineSeries::new(seg, c0.stroke_width(2)).point_size(3))
                    .map_err(|e| anyhow!("{e}"))?;
                if n == 0 {
                    s.label("trained").legend(legend_line(c0));
                }
            }
            for (n, seg) in i.into_iter().enumerate() {
                let s = chart
                    .draw_series(DashedLineSeries::new(seg, 6, 4, c1.stroke_width(2)))
                    .map_err(|e| anyhow!("{e}"))?;
                if n == 0 {
                    s.label("at initialisation").legend(legend_line(c1));
                }
            }
            draw_legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
        }
        Ok(())
    })
}
