namespace Lockstep.Backends.Managed.Gemm;

/// <summary>A GEMM provider asked for by name could not be loaded; the message says what was tried and how to install it.</summary>
public sealed class GemmProviderException : Exception
{
    public GemmProviderException() { }

    public GemmProviderException(string message) : base(message) { }

    public GemmProviderException(string message, Exception inner) : base(message, inner) { }

    internal static GemmProviderException NotLoadable(string provider, IEnumerable<string> trace, string install) =>
        new($"gemm provider '{provider}' could not be loaded. Tried:{Environment.NewLine}" +
            string.Join(Environment.NewLine, trace.Select(line => "  " + line)) + Environment.NewLine +
            $"To install it: {install}. Or choose another provider with Lockstep:Managed:Gemm (auto | mkl | openblas | managed).");
}
