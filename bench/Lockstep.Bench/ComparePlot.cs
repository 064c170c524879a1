using System.Globalization;
using ScottPlot;

namespace Lockstep.Bench;

/// <summary>
/// <c>compare --plot FILE.png</c>: GFLOP/s of each CONV and FC layer by backend and phase (forward, backward-data,
/// backward-weights), with the machine's measured peak drawn as a dashed line.
/// </summary>
public static class ComparePlot
{
    private static readonly string[] Phases = ["forward", "backward-data", "backward-weights"];

    public static void Save(CompareReport report, string path)
    {
        ArgumentNullException.ThrowIfNull(report);
        var layers = report.Layers.Where(l => l.Flops > 0).ToArray();
        var names = report.Config.Backends.Select(b => b.Name).ToArray();
        var plot = new Plot();
        string font = FontFile();
        Fonts.AddFontFile("lockstep", font);
        plot.Font.Set("lockstep");
        var palette = new ScottPlot.Palettes.Category10();
        int series = names.Length * Phases.Length;
        double width = 0.8 / series;
        var bars = new List<Bar>();
        for (int i = 0; i < layers.Length; i++)
        {
            for (int b = 0; b < names.Length; b++)
            {
                var r = layers[i].Results[names[b]];
                // A layer without weights has only its whole backward; one with weights its parts (data: none below the noise).
                double?[] rates = [r.ForwardGflops, r.BackwardWeightsGflops is null ? r.BackwardGflops : r.BackwardDataGflops, r.BackwardWeightsGflops];
                for (int p = 0; p < Phases.Length; p++)
                {
                    int s = b * Phases.Length + p;
                    bars.Add(new Bar
                    {
                        Position = i - 0.4 + width * (s + 0.5),
                        Value = rates[p] ?? 0,
                        Size = width * 0.95,
                        FillColor = Shade(palette.GetColor(b), p),
                        LineWidth = 0,
                    });
                }
            }
        }
        plot.Add.Bars(bars);
        for (int b = 0; b < names.Length; b++)
        {
            for (int p = 0; p < Phases.Length; p++)
            {
                plot.Legend.ManualItems.Add(new LegendItem { LabelText = $"{names[b]} {Phases[p]}", FillColor = Shade(palette.GetColor(b), p) });
            }
        }
        if (report.Machine.PeakGflops is { } peak)
        {
            var line = plot.Add.HorizontalLine(peak, width: 2, color: Colors.Black, pattern: LinePattern.Dashed);
            plot.Legend.ManualItems.Add(new LegendItem
            {
                LabelText = $"measured peak {peak.ToString("0", CultureInfo.InvariantCulture)} GFLOP/s",
                LineColor = line.Color, LinePattern = LinePattern.Dashed, LineWidth = 2,
            });
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, layers.Length).Select(i => (double)i).ToArray(), layers.Select(l => l.Name).ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = -35;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
        plot.Axes.Bottom.MinimumSize = 90;
        plot.Axes.Margins(bottom: 0, top: 0.15);
        plot.YLabel("GFLOP/s");
        plot.Title($"lockstep compare: {report.Config.Net}, batch {report.Config.Batch}, {report.Config.Dtype} — " +
                   $"{report.Machine.Cpu}, {report.Machine.Date}");
        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(path, Math.Max(900, 90 * layers.Length + 300), 600);
    }

    /// <summary>Directories searched for a TrueType font (SkiaSharp's Linux build here reads no fontconfig).</summary>
    public static readonly IReadOnlyList<string> FontDirectories = ["/usr/share/fonts", "/usr/local/share/fonts"];

    // $LOCKSTEP_PLOT_FONT, else DejaVu Sans or Liberation Sans, else any .ttf under FontDirectories.
    private static string FontFile()
    {
        if (Environment.GetEnvironmentVariable("LOCKSTEP_PLOT_FONT") is { Length: > 0 } given)
        {
            return File.Exists(given) ? given : throw new UsageException($"--plot: LOCKSTEP_PLOT_FONT names '{given}', which does not exist");
        }
        var fonts = FontDirectories.Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*.ttf", SearchOption.AllDirectories)).ToList();
        return fonts.FirstOrDefault(f => Path.GetFileName(f) == "DejaVuSans.ttf")
            ?? fonts.FirstOrDefault(f => Path.GetFileName(f) == "LiberationSans-Regular.ttf")
            ?? fonts.FirstOrDefault()
            ?? throw new UsageException(
                $"--plot: no TrueType font under {string.Join(" or ", FontDirectories)}; install one (apt-get install fonts-dejavu-core) " +
                "or set LOCKSTEP_PLOT_FONT to a .ttf file");
    }

    // The backend's colour, lighter for each later phase.
    private static Color Shade(Color color, int phase) => phase == 0 ? color : color.Lighten(0.3 * phase);
}
