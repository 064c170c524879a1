using System.Text.RegularExpressions;
using Lockstep.Training;

namespace Lockstep.Bench.Tests;

/// <summary>
/// <c>lockstep train</c> on a tiny data set generated in the npm package's format (40 fake digits) and a tiny network
/// on the naive backend: it trains, prints the held-out accuracy and the time, keeps weights, and stops at a
/// non-finite loss.
/// </summary>
public sealed partial class TrainCommandTests : IDisposable
{
    private const string TinyNet = "INPUT 28x28x1 -> CONV3-2 -> RELU -> POOL4 -> FC-10";

    private readonly string _dir = Directory.CreateTempSubdirectory("lockstep-train-").FullName;

    public TrainCommandTests() => MnistDigits.Save(FakeDigits(perClass: 4), Data);

    private string Data => Path.Combine(_dir, "digits");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Each class lights its own column band of pixels, with a little per-image noise; values in [0, 1].</summary>
    private static LabelledImages FakeDigits(int perClass)
    {
        int n = 10 * perClass;
        var pixels = new double[n * 784];
        var labels = new int[n];
        var rng = new Random(5);
        for (int i = 0; i < n; i++)
        {
            labels[i] = i % 10;
            for (int p = 0; p < 784; p++) pixels[i * 784 + p] = ((p % 28) / 3 == labels[i] ? 0.8 : 0) + 0.1 * rng.NextDouble();
        }
        return new LabelledImages(pixels, labels, 1, 28, 28);
    }

    private CliResult Train(params string[] extra) =>
        CliRunner.Run(["train", "--net", TinyNet, "--backend", "naive", "--data", Data, "--train", "30", "--test", "10",
            "--batch", "10", "--epochs", "1", .. extra]);

    [Fact]
    public void Train_OneEpoch_PrintsAccuracyAndTime()
    {
        var result = Train();
        Assert.True(result.ExitCode == Cli.Success, result.ToString());
        Assert.Contains("30 training, 10 held out", result.Output, StringComparison.Ordinal);
        Assert.Matches(@"epoch 1/1: loss \d+\.\d{4}, accuracy \d+\.\d{2} %", result.Output);
        Assert.Matches(@"held-out accuracy \(naive\): \d+\.\d{2} % on 10 digits", result.Output);
        Assert.Matches(@"time: \d+\.\d s for 1 epoch \(3 steps\)", result.Output);
        Assert.Empty(result.Error);
    }

    [Fact]
    public void Train_SaveThenLoad_RoundTripsTheWeights()
    {
        string first = Path.Combine(_dir, "first.safetensors"), second = Path.Combine(_dir, "second.safetensors");
        var trained = Train("--save", first);
        Assert.True(trained.ExitCode == Cli.Success, trained.ToString());
        Assert.Contains($"weights: {first} (safetensors, naive)", trained.Output, StringComparison.Ordinal);

        // Start from the file with a learning rate too small to move a weight: the weights saved again are the same
        // bytes, and the held-out accuracy is the trained network's.
        var reloaded = Train("--load", first, "--lr", "1e-300", "--save", second);
        Assert.True(reloaded.ExitCode == Cli.Success, reloaded.ToString());
        Assert.Contains($"weights from {first}", reloaded.Output, StringComparison.Ordinal);
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));
        Assert.Equal(HeldOut(trained.Output), HeldOut(reloaded.Output));

        // And the file holds this network's tensors under PyTorch's names.
        using var file = File.OpenRead(first);
        var names = SafeTensors.Read(file).Select(t => t.Name);
        Assert.Equal(["conv1.weight", "conv1.bias", "fc1.weight", "fc1.bias"], names);
    }

    [Fact]
    public void Train_LoadOfAnotherNetwork_ExitsTwo()
    {
        string file = Path.Combine(_dir, "tiny.safetensors");
        Assert.Equal(Cli.Success, Train("--save", file).ExitCode);
        var result = CliRunner.Run("train", "--net", "INPUT 28x28x1 -> POOL4 -> FC-10", "--backend", "naive", "--data", Data,
            "--train", "30", "--test", "10", "--epochs", "1", "--load", file);
        Assert.True(result.ExitCode == Cli.BadInput, result.ToString());
        Assert.Single(result.ErrorLines);
    }

    [Fact]
    public void Train_NonFiniteLoss_StopsWithExitOneNamingEpochStepAndLoss()
    {
        var result = Train("--lr", "1e30", "--batch", "5", "--epochs", "3");
        Assert.True(result.ExitCode == Cli.Failure, result.ToString());
        var line = Assert.Single(result.ErrorLines);
        Assert.Matches(DivergedMessage(), line);
        Assert.DoesNotContain("held-out accuracy", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Train_MissingData_ExitsTwoNamingTheScript()
    {
        var result = CliRunner.Run("train", "--backend", "naive", "--data", Path.Combine(_dir, "nowhere"));
        Assert.True(result.ExitCode == Cli.BadInput, result.ToString());
        Assert.Contains("eng/mnist.sh", Assert.Single(result.ErrorLines), StringComparison.Ordinal);
    }

    private static string HeldOut(string output) => HeldOutLine().Match(output).Value;

    [GeneratedRegex(@"held-out accuracy \(naive\): .*")]
    private static partial Regex HeldOutLine();

    [GeneratedRegex(@"^lockstep: .*epoch \d, step \d of 6: the loss is (NaN|Infinity|-Infinity)")]
    private static partial Regex DivergedMessage();
}
