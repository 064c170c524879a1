using System.Diagnostics;

namespace Lockstep.Bench.Tests;

/// <summary>
/// Native libraries that do not load, simulated for real: the CLI runs in a child process from a folder that holds
/// its assemblies but none of libtorch's native files, with no NuGet cache to fall back on.
/// </summary>
public sealed class NativeFailureTests : IDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("lockstep-native-failure");

    private (int ExitCode, string Output) RunCli(params string[] args)
    {
        foreach (var file in new DirectoryInfo(AppContext.BaseDirectory).EnumerateFiles())
        {
            if (file.Extension is ".dll" || file.Name.StartsWith("lockstep.", StringComparison.Ordinal))
            {
                file.CopyTo(Path.Combine(_folder.FullName, file.Name), overwrite: true);
            }
        }
        string dotnet = Path.Combine(Environment.GetEnvironmentVariable("DOTNET_ROOT") ?? Path.GetDirectoryName(Environment.ProcessPath)!, "dotnet");
        var start = new ProcessStartInfo(File.Exists(dotnet) ? dotnet : "dotnet")
        {
            WorkingDirectory = _folder.FullName,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(_folder.FullName, "lockstep.dll"));
        foreach (string a in args) start.ArgumentList.Add(a);
        // No NuGet cache where TorchSharp could find libtorch's package: only the (empty) app folder is left.
        start.Environment["HOME"] = _folder.FullName;
        start.Environment["NUGET_PACKAGES"] = Path.Combine(_folder.FullName, "no-packages");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "the CLI did not exit");
        return (process.ExitCode, stdout.GetAwaiter().GetResult() + stderr.GetAwaiter().GetResult());
    }

    [Fact]
    public void TorchGlueUnloadable_BackendTorch_ExitsOneWithTheLoaderReasonAndTheHint()
    {
        var (code, output) = RunCli("info", "--backend", "torch");
        Assert.True(code == Cli.Failure, $"exit {code}\n{output}");
        Assert.Contains("torch: could not load libtorch through TorchSharp", output, StringComparison.Ordinal);
        Assert.Contains("libLibTorchSharp.so: cannot open shared object file", output, StringComparison.Ordinal);
        Assert.Contains("GLIBCXX_3.4.32", output, StringComparison.Ordinal);
        Assert.Contains("./build.sh", output, StringComparison.Ordinal);
    }

    [Fact]
    public void TorchGlueUnloadable_InfoOnManaged_StillReportsAndExitsZero()
    {
        var (code, output) = RunCli("info", "--backend", "managed", "--gemm", "managed");
        Assert.True(code == Cli.Success, $"exit {code}\n{output}");
        Assert.Contains("backend: managed", output, StringComparison.Ordinal);
        Assert.Contains("torch: ", output, StringComparison.Ordinal);
        Assert.Contains("could not load libtorch", output, StringComparison.Ordinal);
    }

    public void Dispose() => _folder.Delete(recursive: true);
}
