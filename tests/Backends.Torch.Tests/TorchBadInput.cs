using Lockstep.Backends.Torch;
using Lockstep.Configuration;
using Lockstep.Conformance;

namespace Lockstep.Tests;

/// <summary>Bad input on the torch backend (rows of docs/bad-input.md).</summary>
public sealed class TorchBadInput() : BadInputConformance(new TorchBackendFactory().Create(new LockstepOptions()));
