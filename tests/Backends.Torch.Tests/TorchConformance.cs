using Lockstep.Backends.Managed;
using Lockstep.Backends.Torch;
using Lockstep.Backends.Torch.Tests;
using Lockstep.Configuration;
using Lockstep.Conformance;
using Lockstep.Conformance.Reference;

namespace Lockstep.Tests;

// The torch side runs on the device the environment configures (LOCKSTEP__TORCH__DEVICE=cuda on a GPU machine).

/// <summary>libtorch against the managed backend: the pair users switch between.</summary>
public sealed class TorchVsManagedConformance() : BackendConformance(
    new TorchBackendFactory().Create(TorchTestSupport.Options), new ManagedBackendFactory().Create(new LockstepOptions()));

/// <summary>libtorch against the naive loop oracle, independent of both real backends' algorithms.</summary>
public sealed class TorchVsNaiveConformance() : BackendConformance(new TorchBackendFactory().Create(TorchTestSupport.Options), new NaiveBackend());

/// <summary>libtorch's gradients against central differences.</summary>
public sealed class TorchGradientChecks() : GradientChecks(new TorchBackendFactory().Create(TorchTestSupport.Options));

/// <summary>The notes' FC→CONV conversion on libtorch.</summary>
public sealed class TorchFcToConv() : FcToConvConformance(new TorchBackendFactory().Create(TorchTestSupport.Options));

/// <summary>libtorch's destination overloads against its allocating ones.</summary>
public sealed class TorchDestinations() : DestinationConformance(new TorchBackendFactory().Create(TorchTestSupport.Options));
