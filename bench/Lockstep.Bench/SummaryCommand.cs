using System.Globalization;
using Lockstep.Backends.Managed;
using Lockstep.Configuration;
using Lockstep.Layers;
using Spectre.Console;

namespace Lockstep.Bench;

/// <summary>
/// <c>lockstep summary NAME|SPEC</c>: the notes' VGGNet table for any network — per layer the output volume,
/// activations, memory, weights and biases — with totals, then the memory a training step needs; with
/// <c>--measured</c>, what the chosen backend actually held during one training step, beside the estimate.
/// </summary>
public static class SummaryCommand
{
    public const string Help = """
        usage: lockstep summary NAME|SPEC [--batch N] [--dtype f32|f64] [--measured] [--backend NAME] [--seed S]

          NAME|SPEC         a named network (cifar, lenet, alexnet, zfnet, vgg16) or a spec in the notes' notation,
                            e.g. "INPUT 32x32x3 -> [CONV3-16 -> RELU -> POOL2]*2 -> FC-10"
          --batch N         images per batch (default 1)
          --dtype f32|f64   element type (default: Lockstep:DType, Float32)
          --measured        run one training step on the backend (--backend, default Lockstep:Backend) and print
                            the bytes it held at its peak beside the estimate
          --seed S          seed for the weights and data of the measured step (default 1)

        Activations are counted as the notes count them: the input and each CONV, POOL and FC output; RELU in place.
        MB = 10^6 bytes. Training memory = activations and their gradients + parameters × 3 (value, gradient,
        momentum) + the managed backend's largest convolution workspace (im2col: a C·F_h·F_w × H'·W' column buffer per
        image in flight, min(Lockstep:Managed:Threads, N) of them; or the Winograd or direct kernel's buffers).
        Exit status: 0, 2 for bad input.
        """;

    private static readonly string[] Options = ["--batch", "--seed"];

    public static int Run(string[] args, IAnsiConsole console, BackendRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(args);
        // The network comes first (usage: summary NAME|SPEC [options]); --measured is the one flag.
        string? target = args.Length > 0 && !args[0].StartsWith('-') ? args[0] : null;
        var rest = args.Skip(target is null ? 0 : 1).ToList();
        bool measured = rest.RemoveAll(a => a == "--measured") > 0;
        var line = CommandLine.Parse("summary", rest, Options);
        if (line.Help)
        {
            console.Profile.Out.Writer.WriteLine(Help);
            return Cli.Success;
        }
        if (target is null) throw new UsageException("summary: name a network (cifar, lenet, alexnet, zfnet, vgg16) or give a spec; see 'lockstep summary --help'");

        var options = LockstepConfiguration.Bind(LockstepConfiguration.Build([.. line.ConfigurationArgs]));
        var net = NamedNetworks.Get(target);
        int batch = line.GetInt("--batch", 1);
        int seed = line.GetInt("--seed", 1, minimum: 0);
        var summary = NetworkSummary.Of(net, batch, options.DType);
        int threads = options.Managed.Threads == 0 ? Environment.ProcessorCount : options.Managed.Threads;
        var (workspace, workspaceLayer) = Workspace(net, batch, threads);

        var w = console.Profile.Out.Writer;
        w.WriteLine($"lockstep summary: {net.Name}, batch {batch}, {options.DType}");
        w.WriteLine($"  spec: {net.Spec ?? NetworkSpec.Format(net)}");
        w.WriteLine();
        console.Write(Table(summary));
        w.WriteLine();
        w.WriteLine($"parameters: {summary.Parameters:N0} ({summary.Weights:N0} weights + {summary.Biases:N0} biases); " +
                    $"{Percent(summary.LargestLayer.Parameters, summary.Parameters)} in {summary.LargestLayer.Name} ({summary.LargestLayer.Kind})");
        w.WriteLine($"activations: {summary.Activations:N0} for the batch ({Per(summary.Activations, batch)}); " +
                    $"forward memory {Mb(summary.ForwardBytes)} ({Per(summary.ForwardBytes, batch, Mb)}), about ×2 with backward");
        if (net.Name == "vgg16")
        {
            // The notes' VGGNet table lists these same rows, but its TOTAL line says ~24M activations (93 MB): the rows sum to 15.2M.
            w.WriteLine("note: the notes' total reads ~24M activations, ~93 MB; the rows of their own table (the rows above) sum to 15.2M, 61 MB");
        }
        w.WriteLine();

        long elementSize = summary.ElementSize;
        long workspaceBytes = workspace * elementSize;
        long total = summary.ActivationAndGradientBytes + summary.ParameterTrainingBytes + workspaceBytes;
        var training = new Table().AddColumns("training step memory (estimate)", "elements", "memory");
        training.Columns[1].RightAligned();
        training.Columns[2].RightAligned();
        training.AddRow("activations + their gradients", $"{2 * summary.Activations:N0}", Mb(summary.ActivationAndGradientBytes));
        training.AddRow("parameters × 3 (value, gradient, momentum)", $"{3 * summary.Parameters:N0}", Mb(summary.ParameterTrainingBytes));
        training.AddRow(Markup.Escape($"managed conv workspace ({workspaceLayer ?? "no CONV needs one"}, {threads} thread{(threads == 1 ? "" : "s")})"),
            $"{workspace:N0}", Mb(workspaceBytes));
        training.AddRow("total", $"{total / elementSize:N0}", Mb(total));
        console.Write(training);
        w.WriteLine($"(the network as built also keeps each RELU's output apart from its input: {summary.StoredActivations:N0} activations stored)");

        if (measured) Measure(console, registry, options, net, batch, seed, total);
        return Cli.Success;
    }

    private static Table Table(NetworkSummary summary)
    {
        var table = new Table().AddColumns("layer", "volume (W×H×D)", "activations", "memory", "weights", "biases");
        for (int i = 2; i < 6; i++) table.Columns[i].RightAligned();
        foreach (var row in summary.Rows)
        {
            string volume = row.Output.Rank == 4 ? $"{row.Output.W}×{row.Output.H}×{row.Output.C}" : $"1×1×{row.Output[1]}";
            bool inPlace = row.Kind == "RELU";
            table.AddRow(
                $"{row.Name} ({row.Kind})",
                volume,
                inPlace ? "(in place)" : $"{row.Activations:N0}",
                inPlace ? "" : Mb(row.Activations * summary.ElementSize),
                row.Weights == 0 ? "" : $"{row.Weights:N0}",
                row.Biases == 0 ? "" : $"{row.Biases:N0}");
        }
        table.AddRow("total", "", $"{summary.Activations:N0}", Mb(summary.ForwardBytes), $"{summary.Weights:N0}", $"{summary.Biases:N0}");
        return table;
    }

    /// <summary>The managed backend's largest im2col buffer over the CONV layers, as it rents it.</summary>
    private static (long Elements, string? Layer) Workspace(NetworkDefinition net, int batch, int threads)
    {
        var shapes = net.Shapes(batch);
        long best = 0;
        string? layer = null;
        for (int i = 0; i < net.Layers.Count; i++)
        {
            if (net.Layers[i] is not ConvDefinition conv) continue;
            long elements = ManagedBackend.ConvWorkspaceElements(i == 0 ? net.InputShape(batch) : shapes[i - 1], conv.Spec, conv.Filters, threads);
            if (elements > best) (best, layer) = (elements, net.LayerNames[i]);
        }
        return (best, layer);
    }

    private static void Measure(IAnsiConsole console, BackendRegistry registry, LockstepOptions options, NetworkDefinition net,
        int batch, int seed, long estimate)
    {
        var w = console.Profile.Out.Writer;
        if (net.IsFullyConvolutional || net.OutputShape(1).Rank != 2)
        {
            throw new UsageException($"summary --measured: {net.Name} ends in a volume, not class scores; a training step needs an FC on top");
        }
        using var backend = Backends.Create(registry, options, options.Backend);
        if (backend is not IMemoryStatistics memory)
        {
            throw new UsageException($"summary --measured: the backend '{backend.Name}' does not report its memory (IMemoryStatistics)");
        }
        long before = memory.LiveBytes;
        memory.ResetPeak();
        using (var network = net.Build(backend, options.DType, seed))
        {
            var input = net.InputShape(batch);
            var rng = new Random(seed);
            var data = new double[input.Count];
            for (long i = 0; i < data.Length; i++) data[i] = rng.NextDouble();
            var labels = new int[batch];
            for (int i = 0; i < batch; i++) labels[i] = rng.Next(net.Classes);
            using var x = backend.Upload(data, input, options.DType);
            network.TrainStep(x, labels, learningRate: 0.01, momentum: 0.9);
            backend.Synchronize();
            long peak = memory.PeakLiveBytes - before;
            long after = memory.LiveBytes - before;
            w.WriteLine();
            w.WriteLine($"measured on {backend.Description}, one training step (batch {batch}, {options.DType}):");
            w.WriteLine($"  peak bytes held:      {Mb(peak)} ({peak:N0} bytes; the estimate is {Mb(estimate)}, measured/estimate = " +
                        $"{(double)peak / estimate:0.00})");
            w.WriteLine($"  held after the step:  {Mb(after)} (parameters, gradients, momentum, the activations kept for backward)");
            w.WriteLine($"  what is counted:      {Counted(backend)}");
        }
    }

    private static string Counted(IBackend backend) => backend.Name switch
    {
        "managed" => "arrays rented from the managed backend's buffer pool and not yet returned (tensors and im2col columns)",
        "torch" => "bytes of the tensors the torch backend handed out and not yet disposed (libtorch's temporaries inside an op not included)",
        _ => "as the backend reports it (IMemoryStatistics)",
    };

    private static string Mb(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:#,0.0} MB");

    private static string Per(long value, int batch) =>
        batch == 1 ? "per image" : string.Create(CultureInfo.InvariantCulture, $"{value / batch:N0} per image");

    private static string Per(long value, int batch, Func<long, string> format) => batch == 1 ? "per image" : $"{format(value / batch)} per image";

    private static string Percent(long part, long whole) => string.Create(CultureInfo.InvariantCulture, $"{100.0 * part / Math.Max(1, whole):0.#}%");
}
