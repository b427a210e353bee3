from video2gs.cli import main

if __name__ == "__main__":
    main()
