using Lockstep.Backends.Managed;
using Lockstep.Backends.Torch;
using Lockstep.Configuration;
using Lockstep.Layers;
using Spectre.Console;

namespace Lockstep.Bench;

/// <summary>
/// The <c>lockstep</c> command line: dispatches to a command and turns failures into exit codes —
/// 0 success, 1 a failure (a native library that does not load, a check that failed), 2 bad input with a one-line reason.
/// </summary>
public static class Cli
{
    public const int Success = 0;
    public const int Failure = 1;
    public const int BadInput = 2;

    public const string Usage = """
        usage: lockstep <command> [options]

        commands:
          info       what would run: the configured backend, its GEMM provider, libtorch, threads, CPU
          compare    per-layer forward/backward time, GFLOP/s and agreement between backends
          summary    the notes' table for a network (NAME or SPEC): volumes, activations, parameters, memory
          train      SGD with momentum on the MNIST digits, on one backend or two in lockstep (--twin)
          soak       many training steps per backend, sampling memory: nothing may grow after warm-up
          bdn        BenchmarkDotNet suite of the primitive ops per backend and shape, with allocations (--short for CI)
          check      randomised conformance sweep: every op, both dtypes, a table per op, a determinism probe

        configuration (any command; appsettings.json < LOCKSTEP__* variables < command line):
          --backend NAME            Lockstep:Backend (managed | torch)
          --dtype f32|f64           Lockstep:DType
          --gemm NAME               Lockstep:Managed:Gemm (auto | mkl | openblas | managed)
          --conv NAME               Lockstep:Managed:Convolution (auto: Winograd or direct where they pay | im2col)
          --device NAME             Lockstep:Torch:Device (cpu | cuda | auto)
          --Lockstep:KEY VALUE      any other key, e.g. --Lockstep:Managed:Threads 1

        'lockstep <command> --help' describes a command.
        exit status: 0 success, 1 failure, 2 bad input
        """;

    /// <summary>The backends this CLI knows: "managed" and "torch".</summary>
    public static BackendRegistry DefaultRegistry() =>
        new BackendRegistry().Register(new ManagedBackendFactory()).Register(new TorchBackendFactory());

    /// <summary>Runs the CLI with the given writers (tests pass StringWriters; output is then plain text).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error, BackendRegistry? registry = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        try
        {
            if (args.Length == 0 || args[0] is "-h" or "--help" or "-?" or "help")
            {
                output.WriteLine(Usage);
                return Success;
            }
            var console = CreateConsole(output);
            var rest = args[1..];
            return args[0] switch
            {
                "info" => InfoCommand.Run(rest, console, registry ?? DefaultRegistry()),
                "compare" => CompareCommand.Run(rest, console, registry ?? DefaultRegistry()),
                "summary" => SummaryCommand.Run(rest, console, registry ?? DefaultRegistry()),
                "train" => TrainCommand.Run(rest, console, registry ?? DefaultRegistry()),
                "bdn" => BdnCommand.Run(rest, console),
                "soak" => SoakCommand.Run(rest, console, registry ?? DefaultRegistry()),
                "check" => CheckCommand.Run(rest, console, registry ?? DefaultRegistry()),
                _ => throw new UsageException($"unknown command '{args[0]}'; commands: info, compare, check, summary, train, soak, bdn (see 'lockstep --help')"),
            };
        }
        catch (UsageException e)
        {
            return Fail(error, BadInput, e.Message);
        }
        catch (SpecException e)
        {
            // The one exception to one line: the spec and a caret under the column that failed.
            error.WriteLine("lockstep: " + e.Message);
            return BadInput;
        }
        catch (ArgumentException e)
        {
            // The library's validation (geometry, configuration, registry) speaks in terms of the input.
            return Fail(error, BadInput, e.Message);
        }
        catch (Exception e) when (e is NullReferenceException or IndexOutOfRangeException or InvalidCastException or NotImplementedException)
        {
            return Fail(error, Failure, "internal error: " + e);
        }
        catch (Exception e)
        {
            return Fail(error, Failure, Describe(e));
        }
    }

    private static int Fail(TextWriter error, int code, string message)
    {
        // One line for bad input: a multi-line library message is joined, not cut.
        if (code == BadInput) message = string.Join(' ', message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        error.WriteLine("lockstep: " + message);
        return code;
    }

    /// <summary>The message of an exception, looking through the wrappers that say nothing by themselves
    /// (a type initializer's or a reflection call's failure).</summary>
    public static string Describe(Exception e)
    {
        ArgumentNullException.ThrowIfNull(e);
        while (e is System.Reflection.TargetInvocationException or TypeInitializationException or AggregateException
               && e.InnerException is not null)
        {
            e = e.InnerException;
        }
        return e.Message;
    }

    /// <summary>
    /// A Spectre console on <paramref name="writer"/>: colours and live progress only on a terminal; redirected output
    /// (files, pipes, CI logs, tests) gets plain tables wide enough not to wrap.
    /// </summary>
    private static IAnsiConsole CreateConsole(TextWriter writer)
    {
        bool terminal = ReferenceEquals(writer, Console.Out) && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = terminal ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!terminal) console.Profile.Width = 200;
        return console;
    }
}
