using Lockstep.Configuration;
using TorchSharp;

namespace Lockstep.Backends.Torch.Tests;

// Creating a backend sets libtorch's process-wide thread count, which these tests read back: they run alone.
[Collection(ProcessWideTorchSettings.Name)]
public class TorchBackendFactoryTests
{
    [Fact]
    public void Create_CpuDescribesDeviceLibtorchAndThreads()
    {
        using var backend = new TorchBackendFactory().Create(new LockstepOptions { Torch = { Device = "cpu", Threads = 1 } });

        Assert.Equal("torch", backend.Name);
        Assert.Equal("torch (cpu, libtorch 2.10.0, 1 thread)", backend.Description);
    }

    [Fact]
    public void LoadedVersion_IsReadFromLibtorchsBuildSettings()
    {
        _ = TorchTestSupport.Backend;
        Assert.NotNull(LibTorch.LoadedVersion);

        // The TorchSharp-cpu build brings libtorch 2.10.0, the version its glue was built for; a machine's own libtorch
        // (TorchVariant=cuda, eng/gpu-check.sh) reports its own, which the description then names beside the glue's.
        if (LibTorch.LoadedVersion == LibTorch.Version)
        {
            Assert.Contains($"libtorch {LibTorch.Version},", TorchTestSupport.Backend.Description);
            return;
        }
        Assert.Matches(@"^\d+\.\d+\.\d+", LibTorch.LoadedVersion);
        Assert.Contains($"libtorch {LibTorch.LoadedVersion}, glue built for {LibTorch.Version},", TorchTestSupport.Backend.Description);
    }

    [Fact]
    public void Create_ZeroThreadsMeansAllCores()
    {
        using var backend = new TorchBackendFactory().Create(new LockstepOptions { Torch = { Threads = 0 } });

        Assert.Equal(Environment.ProcessorCount, torch.get_num_threads());
        Assert.Contains($"{Environment.ProcessorCount} thread", backend.Description);
    }

    [Fact]
    public void Create_ThrowsForCudaWithoutDevice()
    {
        var options = new LockstepOptions { Torch = { Device = "cuda" } };
        if (torch.cuda.is_available())
        {
            using var backend = new TorchBackendFactory().Create(options);
            Assert.StartsWith("torch (cuda,", backend.Description);
            return;
        }

        var e = Assert.Throws<InvalidOperationException>(() => new TorchBackendFactory().Create(options));

        Assert.Contains("torch: device 'cuda' was asked for, but no CUDA device is available", e.Message);
        Assert.Matches("TorchSharp-cpu|torch.cuda.is_available\\(\\) is false", e.Message);
    }

    [Fact]
    public void Create_AutoSaysWhatItPickedAndWhy()
    {
        using var backend = new TorchBackendFactory().Create(new LockstepOptions { Torch = { Device = "auto" } });

        // Why not: the TorchSharp-cpu build has no CUDA; a TorchVariant=cuda build says what libtorch answered.
        string expected = torch.cuda.is_available()
            ? @"^torch \(cuda, auto: a CUDA device is available,"
            : @"^torch \(cpu, auto: no CUDA device \((TorchSharp-cpu build|torch\.cuda\.is_available\(\) is false)\),";
        Assert.Matches(expected, backend.Description);
        Assert.Equal(torch.cuda.is_available() ? "torch:cuda" : "torch", backend.Name);
    }

    [Fact]
    public void Create_ThrowsForUnknownDevice()
    {
        var e = Assert.Throws<ArgumentException>(() => new TorchBackend(new TorchOptions { Device = "gpu" }));

        Assert.Contains("unknown device 'gpu'; expected cpu, cuda or auto", e.Message);
    }

    [Fact]
    public void Registry_CreatesTorchByName()
    {
        var registry = new BackendRegistry().Register(new TorchBackendFactory());

        using var backend = registry.Create(new LockstepOptions { Backend = "torch" });

        Assert.IsType<TorchBackend>(backend);
    }
}
