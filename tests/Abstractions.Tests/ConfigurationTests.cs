using Lockstep.Configuration;
using Lockstep.Conformance.Reference;
using Microsoft.Extensions.Configuration;

namespace Lockstep.Tests;

public class ConfigurationTests
{
    private static LockstepOptions Bind(string[] args, IDictionary<string, string?>? env = null, string? json = null)
    {
        var dir = Directory.CreateTempSubdirectory("lockstep-config");
        try
        {
            if (json is not null) File.WriteAllText(Path.Combine(dir.FullName, "appsettings.json"), json);
            var builder = new ConfigurationBuilder().SetBasePath(dir.FullName).AddJsonFile("appsettings.json", optional: true);
            if (env is not null) builder.AddInMemoryCollection(env.Select(p => new KeyValuePair<string, string?>(p.Key.Replace("__", ":", StringComparison.Ordinal), p.Value)));
            builder.AddCommandLine(args, LockstepConfiguration.ShortSwitches.ToDictionary(p => p.Key, p => p.Value));
            return LockstepConfiguration.Bind(builder.Build());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Bind_Defaults()
    {
        var o = Bind([]);
        Assert.Equal("managed", o.Backend);
        Assert.Equal(DType.Float32, o.DType);
        Assert.Equal("auto", o.Managed.Gemm);
        Assert.Equal("cpu", o.Torch.Device);
    }

    [Fact]
    public void Bind_LaterSourcesWin_JsonThenEnvironmentThenCommandLine()
    {
        const string json = """{ "Lockstep": { "Backend": "naive", "DType": "Float64", "Managed": { "Gemm": "openblas", "Threads": 1 } } }""";
        Assert.Equal("naive", Bind([], json: json).Backend);
        Assert.Equal(DType.Float64, Bind([], json: json).DType);
        Assert.Equal(1, Bind([], json: json).Managed.Threads);
        Assert.Equal("torch", Bind([], new Dictionary<string, string?> { ["LOCKSTEP__BACKEND"] = "torch" }, json).Backend);
        Assert.Equal("managed", Bind(["--backend", "managed"], new Dictionary<string, string?> { ["LOCKSTEP__BACKEND"] = "torch" }, json).Backend);
        Assert.Equal("cuda", Bind(["--Lockstep:Torch:Device", "cuda"]).Torch.Device);
        Assert.Equal(DType.Float64, Bind(["--dtype", "f64"]).DType);
    }

    [Fact]
    public void Build_ReadsEnvironmentVariables()
    {
        Environment.SetEnvironmentVariable("LOCKSTEP__TORCH__THREADS", "3");
        try
        {
            Assert.Equal(3, LockstepConfiguration.Bind(LockstepConfiguration.Build([])).Torch.Threads);
        }
        finally
        {
            Environment.SetEnvironmentVariable("LOCKSTEP__TORCH__THREADS", null);
        }
    }

    [Theory]
    [InlineData("--dtype", "f16", "dtype")]
    [InlineData("--Lockstep:Managed:Threads", "-1", "Threads")]
    [InlineData("--Lockstep:Managed:Threads", "many", "configuration")]
    public void Bind_ThrowsForBadValues(string key, string value, string expected)
    {
        var e = Assert.Throws<ArgumentException>(() => Bind([key, value]));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    private sealed class NaiveFactory : IBackendFactory
    {
        public string Name => "naive";
        public IBackend Create(LockstepOptions options) => new NaiveBackend();
    }

    [Fact]
    public void Registry_CreatesByConfiguredName()
    {
        var registry = new BackendRegistry().Register(new NaiveFactory());
        using var backend = registry.Create(new LockstepOptions { Backend = "NAIVE" });
        Assert.Equal("naive", backend.Name);
    }

    [Fact]
    public void Registry_ThrowsForUnknownName_ListingKnownOnes()
    {
        var registry = new BackendRegistry().Register(new NaiveFactory());
        var e = Assert.Throws<ArgumentException>(() => registry.Create(new LockstepOptions { Backend = "cudnn" }));
        Assert.Contains("unknown backend 'cudnn'", e.Message, StringComparison.Ordinal);
        Assert.Contains("naive", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Registry_ThrowsForDuplicate()
    {
        var registry = new BackendRegistry().Register(new NaiveFactory());
        Assert.Throws<ArgumentException>(() => registry.Register(new NaiveFactory()));
    }
}
