using Lockstep.Configuration;
using TorchSharp;

namespace Lockstep.Backends.Torch.Tests;

/// <summary>
/// Tests of libtorch's process-wide settings (threads, TF32, deterministic algorithms, cuDNN) run in this collection:
/// alone, after the parallel tests, and putting the environment's settings back, so that no other test (on a GPU: the
/// float32 conformance grid) sees them and none of them sees another test's backend change them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideTorchSettings
{
    public const string Name = "process-wide torch settings";
}

[Collection(ProcessWideTorchSettings.Name)]
public sealed class TorchProcessSettingsTests : IDisposable
{
    public void Dispose() => new TorchBackend(TorchTestSupport.Options.Torch).Dispose();

    [Fact]
    public void Create_AllowTF32BindsFromConfigurationAndIsReported()
    {
        var options = LockstepConfiguration.Bind(LockstepConfiguration.Build(["--Lockstep:Torch:AllowTF32", "true"]));

        using var backend = new TorchBackendFactory().Create(options);

        Assert.True(options.Torch.AllowTF32);
        Assert.True(torch.backends.cuda.matmul.allow_tf32, "cuBLAS TF32 flag");
        Assert.True(torch.backends.cudnn.allow_tf32, "cuDNN TF32 flag");
        // The environment may configure cuda (eng/gpu-check.sh), where TF32 has an effect, and other settings after it.
        Assert.Contains(backend.Name == "torch" ? ", tf32 allowed (no effect on cpu)" : ", tf32 allowed", backend.Description);
    }

    [Fact]
    public void Create_TurnsTf32OffByDefault()
    {
        // libtorch's own default lets cuDNN use TF32; the backend's default must not.
        using (new TorchBackend(new TorchOptions { AllowTF32 = true })) { }

        using var backend = new TorchBackend(new TorchOptions());

        Assert.False(torch.backends.cuda.matmul.allow_tf32, "cuBLAS TF32 flag");
        Assert.False(torch.backends.cudnn.allow_tf32, "cuDNN TF32 flag");
        Assert.DoesNotContain("tf32", backend.Description);
    }

    [Fact]
    public void Create_DeterministicSetsLibtorchsFlagAndTheDefaultClearsIt()
    {
        // Each creation reads libtorch's flag back and throws when it differs (TorchSharp 0.107 cannot read it).
        using (var deterministic = new TorchBackend(new TorchOptions { Deterministic = true }))
        {
            Assert.EndsWith(", deterministic)", deterministic.Description);
        }

        using var backend = new TorchBackend(new TorchOptions());

        Assert.DoesNotContain("deterministic", backend.Description);
    }

    [Fact]
    public void Create_CuDnnFalseClearsLibtorchsFlagAndTheDefaultSetsIt()
    {
        var options = LockstepConfiguration.Bind(LockstepConfiguration.Build(["--Lockstep:Torch:CuDnn", "false"]));
        Assert.True(new TorchOptions().CuDnn, "cuDNN is on by default, as in PyTorch");

        using (var off = new TorchBackendFactory().Create(options))
        {
            Assert.False(options.Torch.CuDnn);
            Assert.False(LibTorch.CuDnnEnabled, "libtorch's torch.backends.cudnn.enabled after CuDnn = false");
            Assert.EndsWith(off.Name == "torch" ? ", cudnn off (no effect on cpu))" : ", cudnn off)", off.Description);
        }

        using var backend = new TorchBackend(new TorchOptions());

        Assert.True(LibTorch.CuDnnEnabled, "libtorch's torch.backends.cudnn.enabled after the default");
        Assert.DoesNotContain("cudnn", backend.Description);
    }
}
