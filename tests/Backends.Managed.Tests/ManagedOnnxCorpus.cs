using Lockstep.Backends.Managed;
using Lockstep.Configuration;
using Lockstep.Conformance.Onnx;
using Xunit.Abstractions;

namespace Lockstep.Tests;

/// <summary>The ONNX peer corpus on the managed backend.</summary>
public sealed class ManagedOnnxCorpus(ITestOutputHelper output) : OnnxCorpus(new ManagedBackendFactory().Create(new LockstepOptions()), output);
