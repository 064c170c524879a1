using System.Diagnostics;
using System.Reflection;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Lockstep.Backends.Torch.Tests;

/// <summary>
/// Runs this assembly's tests in process, for a machine without the .NET SDK (eng/gpu-check.sh publishes the project
/// self-contained): <c>Lockstep.Backends.Torch.Tests [CLASS...] [!CLASS...]</c> runs the test classes whose name
/// contains one of the words (all when none) and none of the words after a '!', prints one line per failed or skipped
/// test and a last line
/// "total: N passed, N failed, N skipped"; exit 1 when a test failed or was skipped (torch tests never skip).
/// <c>dotnet test</c> does not use this entry point.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var assembly = Assembly.GetExecutingAssembly();
        var sink = new ResultSink(Console.Out);
        using var framework = new XunitTestFramework(new NullMessageSink());
        var assemblyInfo = Reflector.Wrap(assembly);

        var cases = new List<ITestCase>();
        using (var discoverer = framework.GetDiscoverer(assemblyInfo))
        {
            var found = new DiscoverySink(cases);
            discoverer.Find(includeSourceInformation: false, found, new Options());
            found.Finished.WaitOne();
        }
        string[] include = [.. args.Where(a => !a.StartsWith('!'))], exclude = [.. args.Where(a => a.StartsWith('!')).Select(a => a[1..])];
        bool Named(ITestCase c, string word) => c.TestMethod.TestClass.Class.Name.Contains(word, StringComparison.Ordinal);
        var selected = cases.Where(c => (include.Length == 0 || include.Any(a => Named(c, a))) && !exclude.Any(a => Named(c, a))).ToList();
        Console.WriteLine($"running {selected.Count} of {cases.Count} tests{(args.Length == 0 ? "" : $" (classes matching {string.Join(", ", args)})")}");
        if (selected.Count == 0) return 1;

        var clock = Stopwatch.StartNew();
        using (var executor = framework.GetExecutor(assembly.GetName()))
        {
            executor.RunTests(selected, sink, new Options());
            sink.Finished.WaitOne();
        }
        Console.WriteLine($"time: {clock.Elapsed.TotalSeconds:0.0} s");
        Console.WriteLine($"total: {sink.Passed} passed, {sink.Failed} failed, {sink.Skipped} skipped");
        return sink.Failed == 0 && sink.Skipped == 0 ? 0 : 1;
    }

    /// <summary>Discovery and execution options: xunit's defaults (an absent value means the default).</summary>
    private sealed class Options : ITestFrameworkDiscoveryOptions, ITestFrameworkExecutionOptions
    {
        private readonly Dictionary<string, object?> _values = [];

        public TValue GetValue<TValue>(string name) => _values.TryGetValue(name, out var v) && v is TValue t ? t : default!;

        public void SetValue<TValue>(string name, TValue value) => _values[name] = value;
    }

    private sealed class NullMessageSink : LongLivedMarshalByRefObject, IMessageSink
    {
        public bool OnMessage(IMessageSinkMessage message) => true;
    }

    private sealed class DiscoverySink(List<ITestCase> cases) : LongLivedMarshalByRefObject, IMessageSink
    {
        public ManualResetEvent Finished { get; } = new(false);

        public bool OnMessage(IMessageSinkMessage message)
        {
            if (message is ITestCaseDiscoveryMessage found) cases.Add(found.TestCase);
            if (message is IDiscoveryCompleteMessage) Finished.Set();
            return true;
        }
    }

    private sealed class ResultSink(TextWriter output) : LongLivedMarshalByRefObject, IMessageSink
    {
        private int _passed, _failed, _skipped;

        public ManualResetEvent Finished { get; } = new(false);

        public int Passed => _passed;

        public int Failed => _failed;

        public int Skipped => _skipped;

        public bool OnMessage(IMessageSinkMessage message)
        {
            switch (message)
            {
                case ITestPassed:
                    Interlocked.Increment(ref _passed);
                    break;
                case ITestFailed failed:
                    Interlocked.Increment(ref _failed);
                    lock (output)
                    {
                        output.WriteLine($"FAIL {failed.Test.DisplayName}");
                        output.WriteLine("  " + string.Join(Environment.NewLine + "  ", failed.Messages.Zip(failed.StackTraces, (m, s) => $"{m}{Environment.NewLine}{s}")));
                    }
                    break;
                case ITestSkipped skipped:
                    Interlocked.Increment(ref _skipped);
                    lock (output) output.WriteLine($"SKIP {skipped.Test.DisplayName}: {skipped.Reason}");
                    break;
                case IErrorMessage error:
                    Interlocked.Increment(ref _failed);
                    lock (output) output.WriteLine($"ERROR {string.Join("; ", error.Messages)}");
                    break;
                case ITestAssemblyFinished:
                    Finished.Set();
                    break;
            }
            return true;
        }
    }
}
