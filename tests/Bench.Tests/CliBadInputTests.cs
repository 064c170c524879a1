namespace Lockstep.Bench.Tests;

/// <summary>Bad input on the command line: exit 2 and one line on standard error that names what was wrong.</summary>
public sealed class CliBadInputTests
{
    private const string TinySpec = "INPUT 8x8x1 -> CONV3-2 -> RELU -> POOL2 -> FC-3";

    [Theory]
    [InlineData("--batch must be a positive integer, got 0", "compare", "--batch", "0")]
    [InlineData("--batch must be a positive integer, got abc", "compare", "--batch", "abc")]
    [InlineData("compare: unknown option '--frobnicate'", "compare", "--frobnicate", "1")]
    [InlineData("compare: --batch needs a value", "compare", "--batch")]
    [InlineData("--backends: unknown backend 'nosuch'; known backends: managed, naive, torch", "compare", "--backends", "naive,nosuch")]
    [InlineData("unknown network 'nosuch'; known networks: cifar, lenet, alexnet, zfnet, vgg16", "compare", "--net", "nosuch")]
    [InlineData("unknown dtype 'f16': expected f32 or f64", "compare", "--dtype", "f16")]
    [InlineData("unknown backend 'nosuch'; known backends: managed, naive, torch", "info", "--backend", "nosuch")]
    [InlineData("unknown command 'frobnicate'", "frobnicate")]
    [InlineData("summary: name a network", "summary")]
    [InlineData("unknown network 'nosuch'", "summary", "nosuch")]
    [InlineData("--epochs must be a positive integer, got 0", "train", "--epochs", "0")]
    [InlineData("train: the learning rate must be a positive number, got -1", "train", "--lr", "-1")]
    [InlineData("--lr must be a number, got fast", "train", "--lr", "fast")]
    [InlineData("--lr must be positive, got 0", "soak", "--lr", "0")]
    [InlineData("--lr must be a number, got fast", "soak", "--lr", "fast")]
    [InlineData("unknown backend 'nosuch'; known backends: managed, naive, torch", "train", "--backend", "nosuch")]
    [InlineData("train: the digits are 28×28×1 with 10 classes; spec takes 8×8×1", "train", "--net", TinySpec)]
    public void Cli_ExitsTwoWithOneLineNamingTheProblem(string expected, params string[] args)
    {
        var result = CliRunner.Run(args);
        Assert.True(result.ExitCode == Cli.BadInput, $"expected exit {Cli.BadInput} for {string.Join(' ', args)}\n{result}");
        var line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("lockstep: ", line, StringComparison.Ordinal);
        Assert.Contains(expected, line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("compare", "--net", "INPUT 32x32x3 -> CONVX-16 -> FC-10", 22, "expected the filter size F")]
    [InlineData("summary", "INPUT 32x32x3 -> CONVX-16 -> FC-10", null, 22, "expected the filter size F")]
    [InlineData("summary", "INPUT 32x32x3 -> CONV3-16/S2 -> FC-10", null, 18, "(32 - 3 + 2)/2 + 1 = 16.5 is not an integer")]
    [InlineData("summary", "INPUT 32x32x3 -> [CONV3-16 -> RELU*2 -> FC-10", null, 35, "expected '->'")]
    public void Cli_MalformedSpec_ExitsTwoWithACaretUnderTheColumn(string command, string first, string? second, int column, string expected)
    {
        string[] args = second is null ? [command, first] : [command, first, second];
        string spec = second ?? first;
        var result = CliRunner.Run(args);
        Assert.True(result.ExitCode == Cli.BadInput, result.ToString());
        // Three lines: the reason with the column, the spec, a caret under the column.
        Assert.Equal(3, result.ErrorLines.Length);
        var lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToArray();
        Assert.Contains($"column {column}", lines[0], StringComparison.Ordinal);
        Assert.Contains(expected, lines[0], StringComparison.Ordinal);
        Assert.Equal(spec, lines[1].Trim());
        int indent = lines[1].IndexOf(spec, StringComparison.Ordinal);
        Assert.Equal(indent + column - 1, lines[2].IndexOf('^', StringComparison.Ordinal));
    }
}
