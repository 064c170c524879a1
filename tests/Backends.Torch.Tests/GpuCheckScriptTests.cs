using System.Diagnostics;
using System.Text.RegularExpressions;
using Lockstep.Layers;

namespace Lockstep.Backends.Torch.Tests;

/// <summary>
/// eng/gpu-check.sh and eng/gpu-anchor.py run on a GPU machine that CI never sees: here they are checked to parse,
/// to answer --help, and the anchor to time the same networks as the CLI. (Packaging itself is a manual step: a
/// self-contained publish takes minutes; see the README, GPU.)
/// </summary>
public class GpuCheckScriptTests
{
    private static readonly string Eng = Path.Combine(RepositoryRoot(), "eng");

    [Fact]
    public void GpuCheck_ParsesAndPrintsUsage()
    {
        string script = Path.Combine(Eng, "gpu-check.sh");

        var (parseCode, parseOutput) = Run("bash", "-n", script);
        var (helpCode, help) = Run("bash", script, "--help");

        Assert.True(parseCode == 0, $"bash -n {script}: exit {parseCode}: {parseOutput}");
        Assert.True(helpCode == 0, $"gpu-check.sh --help: exit {helpCode}: {help}");
        Assert.Contains("eng/gpu-check.sh pack", help);
        Assert.Contains("gpu-check.sh run [OUTDIR]", help);
    }

    [Fact]
    public void GpuCheck_RejectsAnUnknownCommand()
    {
        var (code, output) = Run("bash", Path.Combine(Eng, "gpu-check.sh"), "publish");

        Assert.True(code == 2, $"exit {code}, expected 2 (usage): {output}");
    }

    [Theory]
    [InlineData("LOCKSTEP_GPU_STEP_SECONDS", "x", "LOCKSTEP_GPU_STEP_SECONDS must be a positive whole number of seconds, got 'x'")]
    [InlineData("LOCKSTEP_GPU_ARCHIVE", "{out}/results.tar.gz", "LOCKSTEP_GPU_ARCHIVE must lie outside OUTDIR")]
    public void GpuCheckRun_RejectsBadSettingsBeforeItStarts(string variable, string value, string message)
    {
        string outDir = Path.Combine(Path.GetTempPath(), "lockstep-gpu-check-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (code, output) = Run(new Dictionary<string, string> { [variable] = value.Replace("{out}", outDir) },
                "bash", Path.Combine(Eng, "gpu-check.sh"), "run", outDir, "env");

            Assert.True(code == 2, $"exit {code}, expected 2: {output}");
            Assert.Contains(message, output);
        }
        finally
        {
            if (Directory.Exists(outDir)) Directory.Delete(outDir, recursive: true);
        }
    }

    [Theory]
    [InlineData("alexnet")]
    [InlineData("vgg16")]
    public void GpuAnchor_TimesTheNamedNetworksSpec(string net)
    {
        // The anchor writes the specs out (it has no .NET to ask); they must stay the CLI's.
        string anchor = File.ReadAllText(Path.Combine(Eng, "gpu-anchor.py"));
        string spec = NamedNetworks.Get(net).Spec ?? throw new InvalidOperationException($"{net} has no spec text");

        // Python joins adjacent string literals: so does this, over every literal in the file.
        string literals = string.Concat(Regex.Matches(anchor, "\"([^\"\\\\\n]*)\"").Select(m => m.Groups[1].Value));

        Assert.Contains(spec, literals);
    }

    private static (int Code, string Output) Run(string file, params string[] args) => Run(new Dictionary<string, string>(), file, args);

    private static (int Code, string Output) Run(Dictionary<string, string> environment, string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment) start.Environment[name] = value;
        foreach (string arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Backends.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"no Backends.sln above {AppContext.BaseDirectory}");
    }
}
