using Lockstep.Backends.Torch;
using Lockstep.Backends.Torch.Tests;
using Lockstep.Conformance;

namespace Lockstep.Tests;

/// <summary>Bad input on the torch backend (rows of docs/bad-input.md).</summary>
public sealed class TorchBadInput() : BadInputConformance(new TorchBackendFactory().Create(TorchTestSupport.Options));

/// <summary>Several networks on one torch backend, on several threads.</summary>
public sealed class TorchConcurrency() : ConcurrencyConformance(() => new TorchBackendFactory().Create(TorchTestSupport.Options));

/// <summary>Impossible allocations on the torch backend fail with the layer's name.</summary>
public sealed class TorchLargeInput() : LargeInputConformance(new TorchBackendFactory().Create(TorchTestSupport.Options));

/// <summary>Memory stays flat over training steps on the torch backend.</summary>
public sealed class TorchMemory() : MemoryConformance(new TorchBackendFactory().Create(TorchTestSupport.Options));
