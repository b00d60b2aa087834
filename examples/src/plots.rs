//! ROC and calibration plots of a classifier's [`ClassificationMetrics`], for
//! `careledger train --roc FILE --calibration FILE`, and the accuracy
//! against ε plot of `careledger fl sweep --plot FILE`.
//!
//! The plots hold aggregate numbers only (curve points, bin means, row
//! counts per bin), never a record, an id or a pseudonym.
//!
//! # Formats
//!
//! The file name picks the format: `.svg` or `.png` (any case); anything
//! else is an error. Both formats carry the full plot, text included.
//!
//! Text needs a font. plotters' `ttf` feature would find one through
//! font-kit, which links fontconfig and freetype, so CI's clean Debian
//! machine would need their `-dev` packages and every user a system font.
//! This module uses plotters' `ab_glyph` feature instead (pure Rust) with a
//! font compiled into the binary: `examples/assets/fonts/DejaVuSans-ASCII.ttf`,
//! DejaVu Sans 2.37 cut down to printable ASCII (23 KiB; Bitstream Vera and
//! Arev licence, permissive, in `LICENSE-DejaVu.txt` beside it and in the
//! font's own name table). SVG text is written as `<text>` elements and drawn
//! by the viewer with its own sans-serif font; the embedded font only sizes
//! it. PNG text is rasterised with the embedded font, so a character outside
//! printable ASCII in a PNG title is drawn as `?`.
//!
//! A PNG is rendered in memory first and written only once drawing has
//! succeeded, so a failed plot leaves no half-drawn file behind.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context as _, Result};
use careledger::analytics::{CalibrationBin, ClassificationMetrics};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The embedded font (see the module documentation).
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-ASCII.ttf");

/// Font family every text of these plots uses; the embedded font is
/// registered under it.
const FONT_FAMILY: &str = "sans-serif";

/// Colour of the ROC curve and of the calibration line and points.
const CURVE: RGBColor = RGBColor(31, 119, 180);
/// Colour of the reference diagonals (chance, perfect calibration).
const REFERENCE: RGBColor = RGBColor(128, 128, 128);
/// Fill of the calibration row-count bars.
const BARS: RGBColor = RGBColor(174, 199, 232);

const ROC_SIZE: (u32, u32) = (640, 640);
const CALIBRATION_SIZE: (u32, u32) = (640, 800);
/// Height of the calibration plot's reliability panel; the row-count strip
/// takes the rest.
const CALIBRATION_TOP: u32 = 580;

/// Writes a ROC curve (false positive rate on x, true positive rate on y,
/// both 0..1, the chance diagonal dashed grey, the AUC in the caption) to
/// `path`: SVG if it ends in `.svg`, PNG if `.png`, otherwise an error.
pub(crate) fn write_roc(path: &Path, title: &str, metrics: &ClassificationMetrics) -> Result<()> {
    let format = Format::of(path)?;
    let plot = RocPlot::new(title, metrics)?;
    write_plot(path, format, ROC_SIZE, &plot)
        .with_context(|| format!("cannot write the ROC plot to {}", path.display()))
}

/// Writes a calibration (reliability) plot: mean predicted probability (x)
/// against the observed rate of class 1 (y) for every non-empty bin, joined
/// by a line, with the perfect-calibration diagonal, and below it a strip of
/// bars giving the rows in each bin. Same format rule as [`write_roc`].
pub(crate) fn write_calibration(
    path: &Path,
    title: &str,
    metrics: &ClassificationMetrics,
) -> Result<()> {
    let format = Format::of(path)?;
    let plot = CalibrationPlot::new(title, metrics)?;
    write_plot(path, format, CALIBRATION_SIZE, &plot)
        .with_context(|| format!("cannot write the calibration plot to {}", path.display()))
}

/// One ε of an accuracy sweep: `(ε, mean, lowest, highest)` test accuracy.
pub(crate) type EpsilonAccuracy = (f64, f64, f64, f64);

const EPSILON_SIZE: (u32, u32) = (720, 540);

/// Writes test accuracy against ε: the mean over seeds joined by a line,
/// each ε's lowest-to-highest range as a vertical bar, and the accuracy
/// without differential privacy (`reference`) as a dashed line. Same format
/// rule as [`write_roc`].
pub(crate) fn write_accuracy_vs_epsilon(
    path: &Path,
    title: &str,
    points: &[EpsilonAccuracy],
    reference: Option<f64>,
) -> Result<()> {
    let format = Format::of(path)?;
    if points.is_empty() {
        bail!("no ε to plot");
    }
    for (i, &(eps, mean, low, high)) in points.iter().enumerate() {
        let valid_eps = eps.is_finite() && eps > 0.0;
        if !valid_eps || ![mean, low, high].iter().all(|v| is_rate(*v)) {
            bail!("point {i} has an ε that is not positive or an accuracy outside 0..1");
        }
    }
    let plot = EpsilonPlot {
        caption: caption(title, "test accuracy against privacy budget"),
        points: points.to_vec(),
        reference: reference.filter(|r| is_rate(*r)),
    };
    write_plot(path, format, EPSILON_SIZE, &plot)
        .with_context(|| format!("cannot write the accuracy plot to {}", path.display()))
}

struct EpsilonPlot {
    caption: String,
    points: Vec<EpsilonAccuracy>,
    reference: Option<f64>,
}

impl Plot for EpsilonPlot {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        format: Format,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let max_eps = self.points.iter().map(|p| p.0).fold(1.0, f64::max) * 1.1;
        let low = self
            .points
            .iter()
            .map(|p| p.2)
            .chain(self.reference)
            .fold(1.0, f64::min);
        let y0 = ((low - 0.05) * 20.0).floor() / 20.0;
        let mut chart = ChartBuilder::on(root)
            .caption(displayable(&self.caption, format), (FONT_FAMILY, 20))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..max_eps, y0.max(0.0)..1f64)?;
        chart
            .configure_mesh()
            .x_desc("epsilon (at fixed delta)")
            .y_desc("Test accuracy")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .label_style((FONT_FAMILY, 12))
            .axis_desc_style((FONT_FAMILY, 14))
            .max_light_lines(1)
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(210, 210, 210))
            .draw()?;
        if let Some(reference) = self.reference {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, reference), (max_eps, reference)],
                    8,
                    6,
                    REFERENCE.stroke_width(1),
                ))?
                .label(format!("no DP (secure FedAvg) {reference:.3}"))
                .legend(|(x, y)| Rectangle::new([(x, y - 1), (x + 20, y + 1)], REFERENCE.filled()));
        }
        chart.draw_series(self.points.iter().map(|&(eps, _, low, high)| {
            PathElement::new([(eps, low), (eps, high)], BARS.stroke_width(4))
        }))?;
        chart
            .draw_series(LineSeries::new(
                self.points.iter().map(|&(eps, mean, _, _)| (eps, mean)),
                CURVE.stroke_width(2),
            ))?
            .label("DP-SGD, mean over seeds (bar: range)")
            .legend(|(x, y)| Rectangle::new([(x, y - 1), (x + 20, y + 1)], CURVE.filled()));
        chart.draw_series(
            self.points
                .iter()
                .map(|&(eps, mean, _, _)| Circle::new((eps, mean), 4, CURVE.filled())),
        )?;
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Svg,
    Png,
}

impl Format {
    fn of(path: &Path) -> Result<Format> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => bail!(
                "cannot tell the plot format of {}: the file name must end in .svg or .png",
                path.display()
            ),
        }
    }
}

/// A plot that can be drawn on any plotters backend.
trait Plot {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        format: Format,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// Draws `plot` in memory, then writes the file.
fn write_plot(path: &Path, format: Format, size: (u32, u32), plot: &impl Plot) -> Result<()> {
    register_font()?;
    match format {
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                draw(plot, &root, format)?;
            }
            std::fs::write(path, svg)?;
        }
        Format::Png => {
            let (width, height) = size;
            let mut rgb = vec![0u8; width as usize * height as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                draw(plot, &root, format)?;
            }
            let mut file = BitMapBackend::new(path, size);
            file.blit_bitmap((0, 0), size, &rgb)
                .map_err(|e| anyhow!("{e}"))?;
            file.present().map_err(|e| anyhow!("{e}"))?;
        }
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(
    plot: &impl Plot,
    root: &DrawingArea<DB, Shift>,
    format: Format,
) -> Result<()> {
    root.fill(&WHITE)
        .and_then(|()| plot.draw(root, format))
        .and_then(|()| root.present())
        .map_err(|e| anyhow!("drawing failed: {e}"))
}

/// Registers the embedded font under [`FONT_FAMILY`], once per process.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        bail!("the embedded plot font is not a valid font file")
    }
}

/// Text as the format can show it: a PNG's embedded font has printable
/// ASCII only.
fn displayable(text: &str, format: Format) -> String {
    match format {
        Format::Svg => text.to_owned(),
        Format::Png => text
            .chars()
            .map(|c| {
                if c == ' ' || c.is_ascii_graphic() {
                    c
                } else {
                    '?'
                }
            })
            .collect(),
    }
}

/// A caption: the caller's title, then `detail`.
fn caption(title: &str, detail: &str) -> String {
    let title = title.trim();
    if title.is_empty() {
        detail.to_owned()
    } else {
        format!("{title} ({detail})")
    }
}

/// The AUC as the plots print it.
fn auc_text(auc: Option<f64>) -> String {
    match auc {
        Some(auc) => format!("AUC {auc:.3}"),
        None => "AUC n/a: one class only".to_owned(),
    }
}

fn is_rate(value: f64) -> bool {
    // Rates are computed as ratios of counts; allow rounding just outside.
    value.is_finite() && (-1e-9..=1.0 + 1e-9).contains(&value)
}

struct RocPlot {
    caption: String,
    auc: String,
    points: Vec<(f64, f64)>,
}

impl RocPlot {
    fn new(title: &str, metrics: &ClassificationMetrics) -> Result<Self> {
        if metrics.roc.is_empty() {
            bail!("the ROC curve has no point: nothing to plot");
        }
        if let Some(auc) = metrics.auc {
            if !is_rate(auc) {
                bail!("the AUC is not a number between 0 and 1");
            }
        }
        let mut points = Vec::with_capacity(metrics.roc.len());
        for (i, point) in metrics.roc.iter().enumerate() {
            let (x, y) = (point.false_positive_rate, point.true_positive_rate);
            if !is_rate(x) || !is_rate(y) {
                bail!("ROC point {i} has a rate that is not a number between 0 and 1");
            }
            points.push((x, y));
        }
        let auc = auc_text(metrics.auc);
        Ok(RocPlot {
            caption: caption(title, &auc),
            auc,
            points,
        })
    }
}

impl Plot for RocPlot {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        format: Format,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let mut chart = ChartBuilder::on(root)
            .caption(displayable(&self.caption, format), (FONT_FAMILY, 20))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        unit_mesh(&mut chart, "False positive rate", "True positive rate")?;

        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                8,
                6,
                REFERENCE.stroke_width(1),
            ))?
            .label("Chance")
            .legend(|(x, y)| Rectangle::new([(x, y - 1), (x + 20, y + 1)], REFERENCE.filled()));
        chart
            .draw_series(LineSeries::new(
                self.points.iter().copied(),
                CURVE.stroke_width(2),
            ))?
            .label(format!("ROC ({})", self.auc))
            .legend(|(x, y)| Rectangle::new([(x, y - 1), (x + 20, y + 1)], CURVE.filled()));

        legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}

struct CalibrationPlot {
    caption: String,
    /// `(mean predicted, observed rate)` of every non-empty bin, in bin
    /// order.
    points: Vec<(f64, f64)>,
    /// `(lower, upper, rows)` of every bin.
    bars: Vec<(f64, f64, u64)>,
    rows: u64,
}

impl CalibrationPlot {
    fn new(title: &str, metrics: &ClassificationMetrics) -> Result<Self> {
        if metrics.calibration.is_empty() {
            bail!("the calibration has no bin: nothing to plot");
        }
        let mut points = Vec::new();
        let mut bars = Vec::with_capacity(metrics.calibration.len());
        for (i, bin) in metrics.calibration.iter().enumerate() {
            let CalibrationBin {
                lower,
                upper,
                rows,
                mean_predicted,
                observed_rate,
            } = *bin;
            if !is_rate(lower) || !is_rate(upper) || lower > upper {
                bail!("calibration bin {i} has edges that are not within 0..1");
            }
            bars.push((lower, upper, rows));
            if rows == 0 {
                continue;
            }
            match (mean_predicted, observed_rate) {
                (Some(x), Some(y)) if is_rate(x) && is_rate(y) => points.push((x, y)),
                _ => bail!(
                    "calibration bin {i} has rows but no mean prediction or observed rate between 0 and 1"
                ),
            }
        }
        if points.is_empty() {
            bail!("every calibration bin is empty: nothing to plot");
        }
        let rows = bars.iter().map(|&(_, _, rows)| rows).sum();
        Ok(CalibrationPlot {
            caption: caption(title, "calibration"),
            points,
            bars,
            rows,
        })
    }
}

impl Plot for CalibrationPlot {
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        format: Format,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (top, bottom) = root.split_vertically(CALIBRATION_TOP);

        let mut chart = ChartBuilder::on(&top)
            .caption(displayable(&self.caption, format), (FONT_FAMILY, 20))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        unit_mesh(
            &mut chart,
            "Mean predicted probability",
            "Observed rate of class 1",
        )?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                8,
                6,
                REFERENCE.stroke_width(1),
            ))?
            .label("Perfect calibration")
            .legend(|(x, y)| Rectangle::new([(x, y - 1), (x + 20, y + 1)], REFERENCE.filled()));
        chart
            .draw_series(LineSeries::new(
                self.points.iter().copied(),
                CURVE.stroke_width(2),
            ))?
            .label("Model (non-empty bins)")
            .legend(|(x, y)| Rectangle::new([(x, y - 1), (x + 20, y + 1)], CURVE.filled()));
        chart.draw_series(
            self.points
                .iter()
                .map(|&point| Circle::new(point, 4, CURVE.filled())),
        )?;
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;

        // Row counts per bin, on the same x axis.
        let max_rows = self
            .bars
            .iter()
            .map(|&(_, _, rows)| rows)
            .max()
            .unwrap_or(0);
        let y_top = (max_rows.max(1) as f64 * 1.25).ceil();
        let mut strip = ChartBuilder::on(&bottom)
            .margin_left(16)
            .margin_right(16)
            .margin_bottom(8)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..1f64, 0f64..y_top)?;
        strip
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(11)
            .y_labels(3)
            .x_label_formatter(&|x| format!("{x:.1}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_desc(format!("Predicted probability bin ({} rows)", self.rows))
            .y_desc("Rows")
            .label_style((FONT_FAMILY, 12))
            .axis_desc_style((FONT_FAMILY, 14))
            .light_line_style(WHITE)
            .draw()?;
        strip.draw_series(self.bars.iter().filter(|bar| bar.2 > 0).map(
            |&(lower, upper, rows)| {
                Rectangle::new([(lower, 0.0), (upper, rows as f64)], BARS.filled())
            },
        ))?;
        strip.draw_series(self.bars.iter().filter(|bar| bar.2 > 0).map(
            |&(lower, upper, rows)| {
                Rectangle::new([(lower, 0.0), (upper, rows as f64)], CURVE.stroke_width(1))
            },
        ))?;
        let count_style = TextStyle::from((FONT_FAMILY, 12).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        strip.draw_series(self.bars.iter().filter(|bar| bar.2 > 0).map(
            |&(lower, upper, rows)| {
                Text::new(
                    rows.to_string(),
                    ((lower + upper) / 2.0, rows as f64),
                    count_style.clone(),
                )
            },
        ))?;
        Ok(())
    }
}

/// Axes of a 0..1 × 0..1 chart, labelled every 0.1.
fn unit_mesh<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    x_desc: &str,
    y_desc: &str,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_mesh()
        .x_labels(11)
        .y_labels(11)
        .x_label_formatter(&|x| format!("{x:.1}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT_FAMILY, 12))
        .axis_desc_style((FONT_FAMILY, 14))
        .max_light_lines(1)
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(210, 210, 210))
        .draw()
}

fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT_FAMILY, 13))
        .background_style(WHITE.mix(0.9))
        .border_style(REFERENCE)
        .draw()
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use careledger::analytics::example_data::BreastCancerData;
    use careledger::analytics::{
        evaluate, train, CalibrationBin, ClassificationMetrics, Dataset, Metrics, ModelKind,
        RocPoint,
    };

    use super::*;

    /// Logistic regression on the breast-cancer CSV, evaluated on a
    /// deterministic quarter of its rows.
    fn metrics() -> &'static ClassificationMetrics {
        static METRICS: OnceLock<ClassificationMetrics> = OnceLock::new();
        METRICS.get_or_init(|| {
            let csv_path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/ml/breast_cancer.csv");
            let csv = std::fs::read_to_string(csv_path).expect("breast-cancer CSV present");
            let data = BreastCancerData::parse(&csv).expect("csv parses");
            let dataset = Dataset::from_arrays(
                data.features().clone(),
                Some(data.targets().clone()),
                data.spec().hash(),
            )
            .expect("dataset");
            let (train_rows, test_rows) = dataset.split_holdout(0.25);
            assert!(test_rows.len() > 100, "held out {} rows", test_rows.len());
            let model = train(&ModelKind::logistic_regression(), &train_rows, 0).expect("train");
            match evaluate(&model, &test_rows).expect("evaluate") {
                Metrics::Classification(m) => m,
                _ => panic!("a logistic regression gives classification metrics"),
            }
        })
    }

    fn read_svg(path: &Path) -> String {
        let svg = std::fs::read_to_string(path).expect("svg written");
        assert!(
            svg.starts_with("<svg"),
            "not an SVG: {:?}",
            &svg[..svg.len().min(40)]
        );
        assert!(svg.trim_end().ends_with("</svg>"), "SVG not closed");
        assert_eq!(svg.matches("<svg").count(), 1);
        svg
    }

    /// `points` of the polylines stroked in the curve colour.
    fn curve_polylines(svg: &str) -> Vec<Vec<(i32, i32)>> {
        let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", CURVE.0, CURVE.1, CURVE.2);
        svg.lines()
            .filter(|line| line.starts_with("<polyline") && line.contains(&stroke))
            .map(|line| {
                let points = line
                    .split("points=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .expect("polyline has points");
                points
                    .split_whitespace()
                    .map(|pair| {
                        let (x, y) = pair.split_once(',').expect("x,y");
                        (x.parse().expect("x"), y.parse().expect("y"))
                    })
                    .collect()
            })
            .collect()
    }

    /// Every `<text>` element's content.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .map(|chunk| {
                let body = chunk.split_once('>').expect("text tag closes").1;
                body.split("</text>")
                    .next()
                    .expect("text body")
                    .trim()
                    .to_owned()
            })
            .collect()
    }

    const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert!(bytes.starts_with(PNG_MAGIC), "not a PNG");
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        (be(16), be(20))
    }

    #[test]
    fn the_model_separates_the_classes() {
        let m = metrics();
        let auc = m.auc.expect("both classes held out");
        assert!(auc > 0.95, "AUC {auc}");
        assert!(m.roc.len() >= 3);
        assert!(m.calibration.iter().filter(|b| b.rows > 0).count() >= 2);
    }

    #[test]
    fn roc_svg_has_the_curve_the_diagonal_and_the_auc() {
        let m = metrics();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("roc.svg");
        write_roc(&path, "Breast cancer <test> & co", m).expect("write ROC");
        let svg = read_svg(&path);

        let auc = format!("AUC {:.3}", m.auc.expect("auc"));
        let texts = texts(&svg);
        assert!(
            texts
                .iter()
                .any(|t| t == &format!("Breast cancer &lt;test&gt; &amp; co ({auc})")),
            "caption missing from {texts:?}"
        );
        assert!(
            texts.iter().any(|t| t == &format!("ROC ({auc})")),
            "legend: {texts:?}"
        );
        for label in [
            "False positive rate",
            "True positive rate",
            "Chance",
            "0.0",
            "0.5",
            "1.0",
        ] {
            assert!(
                texts.iter().any(|t| t == label),
                "{label} missing from {texts:?}"
            );
        }

        // Exactly one polyline in the curve colour, one vertex per ROC
        // point, from the bottom-left corner to the top-right one.
        let curves = curve_polylines(&svg);
        assert_eq!(curves.len(), 1, "{curves:?}");
        let curve = &curves[0];
        assert_eq!(curve.len(), m.roc.len());
        let (first, last) = (curve[0], curve[curve.len() - 1]);
        assert!(first.0 < last.0 && first.1 > last.1, "{first:?} → {last:?}");
        assert!(curve
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 >= w[1].1));

        // The chance line is drawn as several short grey dashes.
        let grey = "stroke=\"#808080\"";
        let dashes = svg
            .lines()
            .filter(|l| l.starts_with("<polyline") && l.contains(grey))
            .count();
        assert!(dashes > 5, "{dashes} dashes");
    }

    #[test]
    fn calibration_svg_has_one_point_per_non_empty_bin_and_the_counts() {
        let m = metrics();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("calibration.SVG");
        write_calibration(&path, "Breast cancer", m).expect("write calibration");
        let svg = read_svg(&path);

        let non_empty: Vec<&CalibrationBin> = m.calibration.iter().filter(|b| b.rows > 0).collect();
        let curves = curve_polylines(&svg);
        assert_eq!(curves.len(), 1, "{curves:?}");
        assert_eq!(curves[0].len(), non_empty.len());
        assert_eq!(svg.matches("<circle").count(), non_empty.len());

        let texts = texts(&svg);
        for label in [
            "Breast cancer (calibration)",
            "Mean predicted probability",
            "Observed rate of class 1",
            "Perfect calibration",
            "Rows",
        ] {
            assert!(
                texts.iter().any(|t| t == label),
                "{label} missing from {texts:?}"
            );
        }
        assert!(texts.contains(&format!("Predicted probability bin ({} rows)", m.rows)));
        for bin in non_empty {
            assert!(texts.contains(&bin.rows.to_string()), "count {}", bin.rows);
        }
    }

    #[test]
    fn png_plots_are_pngs_of_the_declared_size() {
        let m = metrics();
        let dir = tempfile::tempdir().expect("tempdir");
        let roc = dir.path().join("roc.png");
        let calibration = dir.path().join("calibration.PNG");
        write_roc(&roc, "Breast cancer – ROC", m).expect("write ROC");
        write_calibration(&calibration, "Breast cancer", m).expect("write calibration");
        assert_eq!(png_size(&std::fs::read(&roc).expect("roc")), ROC_SIZE);
        assert_eq!(
            png_size(&std::fs::read(&calibration).expect("calibration")),
            CALIBRATION_SIZE
        );
        // Compressed text and lines on white: well above a blank image.
        assert!(std::fs::metadata(&roc).expect("roc").len() > 5_000);
    }

    #[test]
    fn single_class_roc_says_auc_is_undefined() {
        let mut m = metrics().clone();
        m.auc = None;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("roc.svg");
        write_roc(&path, "", &m).expect("write ROC");
        let texts = texts(&read_svg(&path));
        assert!(
            texts.iter().any(|t| t == "AUC n/a: one class only"),
            "{texts:?}"
        );
    }

    fn error_of(result: Result<()>) -> String {
        format!("{:#}", result.expect_err("should fail"))
    }

    #[test]
    fn unknown_extensions_are_refused_before_anything_is_written() {
        let m = metrics();
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["roc.pdf", "roc", "roc.svg.txt", ".svg"] {
            let path = dir.path().join(name);
            let message = error_of(write_roc(&path, "t", m));
            assert!(message.contains(".svg or .png"), "{name}: {message}");
            let message = error_of(write_calibration(&path, "t", m));
            assert!(message.contains(".svg or .png"), "{name}: {message}");
            assert!(!path.exists(), "{name} written");
        }
    }

    #[test]
    fn empty_or_invalid_metrics_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let svg = dir.path().join("plot.svg");
        let png = dir.path().join("plot.png");

        let mut empty = metrics().clone();
        empty.roc.clear();
        empty.calibration.clear();
        for path in [&svg, &png] {
            assert!(error_of(write_roc(path, "t", &empty)).contains("ROC curve has no point"));
            assert!(error_of(write_calibration(path, "t", &empty)).contains("no bin"));
            assert!(!path.exists());
        }

        let mut no_rows = metrics().clone();
        for bin in &mut no_rows.calibration {
            bin.rows = 0;
            bin.mean_predicted = None;
            bin.observed_rate = None;
        }
        assert!(error_of(write_calibration(&svg, "t", &no_rows))
            .contains("every calibration bin is empty"));

        let mut nan = metrics().clone();
        nan.roc.push(RocPoint {
            threshold: Some(0.5),
            false_positive_rate: f64::NAN,
            true_positive_rate: 1.0,
        });
        assert!(error_of(write_roc(&svg, "t", &nan)).contains("not a number between 0 and 1"));

        let mut missing = metrics().clone();
        let bin = missing
            .calibration
            .iter_mut()
            .find(|b| b.rows > 0)
            .expect("bin");
        bin.observed_rate = None;
        assert!(error_of(write_calibration(&svg, "t", &missing)).contains("no mean prediction"));
        assert!(!svg.exists());
    }

    #[test]
    fn unwritable_paths_are_errors_that_name_the_path() {
        let m = metrics();
        let dir = tempfile::tempdir().expect("tempdir");
        let missing_dir = dir.path().join("no-such-dir");
        // A directory where the file should go.
        let is_dir = dir.path().join("taken.svg");
        std::fs::create_dir(&is_dir).expect("mkdir");
        let is_dir_png = dir.path().join("taken.png");
        std::fs::create_dir(&is_dir_png).expect("mkdir");

        for path in [
            missing_dir.join("roc.svg"),
            missing_dir.join("roc.png"),
            is_dir.clone(),
            is_dir_png.clone(),
        ] {
            let message = error_of(write_roc(&path, "t", m));
            assert!(message.contains("cannot write the ROC plot"), "{message}");
            assert!(message.contains(&path.display().to_string()), "{message}");
            let message = error_of(write_calibration(&path, "t", m));
            assert!(
                message.contains("cannot write the calibration plot"),
                "{message}"
            );
        }
        assert!(!missing_dir.exists());
    }

    #[test]
    fn plots_are_deterministic() {
        let m = metrics();
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a.svg"), dir.path().join("b.svg"));
        write_calibration(&a, "t", m).expect("a");
        write_calibration(&b, "t", m).expect("b");
        assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    }
}
