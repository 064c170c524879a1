using Lockstep.Backends.Managed;
using Lockstep.Backends.Torch;
using Lockstep.Configuration;
using Lockstep.Conformance;
using Lockstep.Conformance.Reference;

namespace Lockstep.Tests;

/// <summary>libtorch against the managed backend: the pair users switch between.</summary>
public sealed class TorchVsManagedConformance() : BackendConformance(
    new TorchBackendFactory().Create(new LockstepOptions()), new ManagedBackendFactory().Create(new LockstepOptions()));

/// <summary>libtorch against the naive loop oracle, independent of both real backends' algorithms.</summary>
public sealed class TorchVsNaiveConformance() : BackendConformance(new TorchBackendFactory().Create(new LockstepOptions()), new NaiveBackend());

/// <summary>libtorch's gradients against central differences.</summary>
public sealed class TorchGradientChecks() : GradientChecks(new TorchBackendFactory().Create(new LockstepOptions()));

/// <summary>The notes' FC→CONV conversion on libtorch.</summary>
public sealed class TorchFcToConv() : FcToConvConformance(new TorchBackendFactory().Create(new LockstepOptions()));
